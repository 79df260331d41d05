package transfer

import (
	"io"
	"io/fs"
	"os"
	"testing"
)

// TestOutputToADevice: export --out /dev/null writes to the device as it
// is and never puts a file in its place. The check comes before anything
// is written: a temporary file that would be renamed over the device is
// removed again, so that the test cannot replace the system's /dev/null.
func TestOutputToADevice(t *testing.T) {
	w, commit, abort, err := outputFile(os.DevNull, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := w.(*os.File); !ok || f.Name() != os.DevNull {
		abort()
		t.Fatalf("export --out %s writes to %v, not to the device", os.DevNull, w)
	}
	if _, err := io.WriteString(w, "{}\n"); err != nil {
		t.Fatal(err)
	}
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(os.DevNull); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
		t.Fatalf("%s after export: %v, %v; want the character device", os.DevNull, fi.Mode(), err)
	}
}
