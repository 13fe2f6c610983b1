package api

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"crucible/internal/api/apiv1"
)

// TestOpenAPISchemasMatchTheWireTypes checks the document's schemas of
// request and response bodies against the apiv1 types: each property the
// document names is a JSON field of the type, and each field is documented.
func TestOpenAPISchemasMatchTheWireTypes(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]schema `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{
		"CreateCompetition":           apiv1.CreateCompetitionRequest{},
		"CreateSubmission":            apiv1.CreateSubmissionRequest{},
		"CreatePool":                  apiv1.CreatePoolRequest{},
		"EpochRecord":                 apiv1.WeightsRecord{},
		"MinerUID":                    apiv1.MinerUID{},
		"Registration":                apiv1.Registration{},
		"ValidatorStake":              apiv1.ValidatorStake{},
		"SetStake":                    apiv1.SetStakeRequest{},
		"PostWeights":                 apiv1.PostWeightsRequest{},
		"WeightVector":                apiv1.WeightVector{},
		"ConsensusEpochInfo":          apiv1.EpochInfo{},
		"ConsensusEpoch":              apiv1.ConsensusRecord{},
		"CreatePreferenceCompetition": apiv1.CreatePreferenceCompetitionRequest{},
		"PreferenceCopies":            apiv1.PreferenceCopies{},
		"PreferenceRatingRequest":     apiv1.PreferenceRatingRequest{},
		"PreferenceRating":            apiv1.PreferenceRating{},
		"PreferenceEpoch":             apiv1.PreferenceEpoch{},
		"ContributorKey":              apiv1.NewContributorKey{}, // key: in the creation response only
		"Deposit":                     apiv1.DepositRequest{},
		"PreferenceClose":             apiv1.PreferenceClose{},
		"RoleplayEpoch":               apiv1.RoleplayEpoch{},
		"TaskPrompt":                  apiv1.TaskPrompt{},
	} {
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("openapi.json has no schema %s", name)
			continue
		}
		var fields []string
		for _, f := range structFields(reflect.TypeOf(v)) {
			field, _, _ := strings.Cut(f, " ")
			field, _, _ = strings.Cut(field, ",")
			fields = append(fields, field)
		}
		props := s.properties(doc.Components.Schemas)
		for p := range props {
			if !slices.Contains(fields, p) {
				t.Errorf("schema %s documents %q, which %T does not have", name, p, v)
			}
		}
		for _, f := range fields {
			if _, ok := props[f]; !ok {
				t.Errorf("schema %s does not document %T's field %q", name, v, f)
			}
		}
	}
}

// schema is an OpenAPI object schema: its properties, or the schemas it
// combines (allOf, each a $ref or properties).
type schema struct {
	Properties map[string]json.RawMessage `json:"properties"`
	AllOf      []schema                   `json:"allOf"`
	Ref        string                     `json:"$ref"`
}

// properties returns every property of s, following allOf and $ref.
func (s schema) properties(all map[string]schema) map[string]json.RawMessage {
	if name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/"); ok {
		return all[name].properties(all)
	}
	props := maps.Clone(s.Properties)
	if props == nil {
		props = map[string]json.RawMessage{}
	}
	for _, part := range s.AllOf {
		maps.Copy(props, part.properties(all))
	}
	return props
}
