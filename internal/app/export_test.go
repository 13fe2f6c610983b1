package app

import "crucible/internal/launcher"

// LauncherOf returns the launcher a's workers serve artifacts with (nil
// when they serve none).
func LauncherOf(a *App) *launcher.Launcher {
	if a.models == nil {
		return nil
	}
	return a.models.Launcher
}
