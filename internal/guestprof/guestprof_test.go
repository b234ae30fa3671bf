package guestprof

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
)

// A tiny module whose export "f" calls "g" twice: the profile counts both, and Reset zeroes them.
func TestProfileCountsCalls(t *testing.T) {
	// (module (func $g) (func (export "f") call $g call $g) (export "g" (func $g)))
	mod := []byte{0, 'a', 's', 'm', 1, 0, 0, 0,
		1, 4, 1, 0x60, 0, 0, // type: () -> ()
		3, 3, 2, 0, 0, // two functions of type 0
		7, 9, 2, 1, 'f', 0, 1, 1, 'g', 0, 0, // exports f = func 1, g = func 0
		10, 11, 2, 2, 0, 0x0b, 6, 0, 0x10, 0, 0x10, 0, 0x0b, // code: g: end; f: call 0, call 0, end
	}
	p := New()
	ctx := p.Context(context.Background())
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	m, err := r.Instantiate(ctx, mod)
	require.NoError(t, err)
	for range 3 {
		_, err = m.ExportedFunction("f").Call(ctx)
		require.NoError(t, err)
	}
	var lines []string
	p.Report(func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }, 3)
	require.Equal(t, "3.0 function calls per association", lines[0], "f once and g twice per unit: %q", lines)
	require.Len(t, lines, 3, "f and g: %q", lines)
	require.True(t, strings.HasPrefix(strings.TrimSpace(lines[1]), "2.00 calls"), "g first (most called): %q", lines)
	p.Reset()
	lines = lines[:0]
	p.Report(func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }, 1)
	require.Equal(t, []string{"0.0 function calls per association"}, lines)
}
