package api

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"crucible/internal/api/apiv1"
	"crucible/internal/consensus"
	"crucible/internal/kind"
	"crucible/internal/labeling"
	"crucible/internal/pool"
	"crucible/internal/seal"
	"crucible/internal/store"
	"crucible/internal/weights"
)

// TestWireTypesMirrorTheHub checks the apiv1 types that mirror a type the
// hub reads or writes (the store cannot import apiv1, and the services may
// not, since the web UI imports them) against that type: the client and the
// hub encode and decode the same JSON.
func TestWireTypesMirrorTheHub(t *testing.T) {
	for _, pair := range [][2]any{
		{store.PreferenceRating{}, apiv1.PreferenceRating{}},
		{store.ContributorKey{}, apiv1.ContributorKey{}},
		{labeling.NewKey{}, apiv1.NewContributorKey{}},
		{labeling.EpochClose{}, apiv1.PreferenceClose{}},
		{store.MinerUID{}, apiv1.MinerUID{}},
		{consensus.Registration{}, apiv1.Registration{}},
		{store.ValidatorStake{}, apiv1.ValidatorStake{}},
		{store.WeightVector{}, apiv1.WeightVector{}},
		{consensus.Record{}, apiv1.ConsensusRecord{}},
		{weights.Record{}, apiv1.WeightsRecord{}},
		{seal.EpochView{}, apiv1.RoleplayEpoch{}},
		{seal.Contamination{}, apiv1.Contamination{}},
		{consensus.EpochInfo{}, apiv1.EpochInfo{}},
		{labeling.EpochReport{}, apiv1.PreferenceEpoch{}},
		{pool.DepositRequest{}, apiv1.DepositRequest{}},
		{pool.JoinRequest{}, apiv1.JoinPoolRequest{}},
		{kind.Prompt{}, apiv1.TaskPrompt{}},
	} {
		hub, wire := reflect.TypeOf(pair[0]), reflect.TypeOf(pair[1])
		if h, w := wireShape(hub), wireShape(wire); h != w {
			t.Errorf("%v encodes as\n  %s\nbut %v decodes\n  %s", hub, h, wire, w)
		}
	}
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// wireShape describes what encoding/json writes for t: a struct's fields
// in order under their JSON names and options (embedded structs inlined, "-"
// fields left out), a type with its own encoding by its name.
func wireShape(t reflect.Type) string {
	if t.Implements(jsonMarshaler) || t.Implements(textMarshaler) {
		return t.String()
	}
	switch t.Kind() {
	case reflect.Pointer:
		return "*" + wireShape(t.Elem())
	case reflect.Slice, reflect.Array:
		return "[]" + wireShape(t.Elem())
	case reflect.Map:
		return "map[" + t.Key().Kind().String() + "]" + wireShape(t.Elem())
	case reflect.Struct:
		return "{" + strings.Join(structFields(t), ", ") + "}"
	}
	return t.Kind().String()
}

func structFields(t reflect.Type) []string {
	var fields []string
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		switch {
		case tag == "-" || (!f.IsExported() && !f.Anonymous):
		case f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct:
			fields = append(fields, structFields(f.Type)...)
		default:
			name, opts, _ := strings.Cut(tag, ",")
			if name == "" {
				name = f.Name
			}
			if opts != "" {
				name += "," + opts
			}
			fields = append(fields, name+" "+wireShape(f.Type))
		}
	}
	return fields
}
