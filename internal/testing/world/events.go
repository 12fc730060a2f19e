package world

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/amishare/amishare/internal/testing/moto"
)

// SampleImage is the image id in every events/*.json sample.
const SampleImage = "ami-0123456789abcdef0"

// eventsDir is the repository's events/, found from this file.
func eventsDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "events")
}

// SampleEvent reads events/name with the sample image id replaced by imageID.
func SampleEvent(t testing.TB, name, imageID string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(eventsDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(b, []byte(SampleImage), []byte(imageID))
}

// RegionEvent is SampleEvent as it arrives from region (the samples come
// from moto.Region).
func RegionEvent(t testing.TB, name, imageID, region string) []byte {
	t.Helper()
	return bytes.ReplaceAll(SampleEvent(t, name, imageID), []byte(moto.Region), []byte(region))
}

// EventFile writes SampleEvent to a temporary file and returns its path.
func EventFile(t testing.TB, name, imageID string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, SampleEvent(t, name, imageID), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
