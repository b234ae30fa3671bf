package abi

import "github.com/dicomgate/dicomgate/wasm/host/internal/vm"

// args reads the arguments of one import call in order, as cpp-host's exports.cc does with its Word
// arguments: scalars are one stack slot each, a guest memory range is a (pointer, length) pair. A
// range outside guest memory yields an empty value and makes ok false: the import then returns
// INVALID_MEMORY_ACCESS. One reader replaces a read-and-check stanza per argument; it lives on the
// caller's stack (no allocation).
type args struct {
	v   *vm.VM
	s   []uint64
	i   int
	bad bool
}

// argsOf starts reading the arguments in s of a call by v.
func argsOf(v *vm.VM, s []uint64) args { return args{v: v, s: s} }

// u32 reads the next argument as an i32.
func (a *args) u32() uint32 {
	x := uint32(a.s[a.i])
	a.i++
	return x
}

// u64 reads the next argument as an i64.
func (a *args) u64() uint64 {
	x := a.s[a.i]
	a.i++
	return x
}

// skip passes over n arguments the import does not use.
func (a *args) skip(n int) { a.i += n }

// view reads a (pointer, length) pair and returns that guest memory without a copy: only valid until
// the guest runs again (vm.VM.View).
func (a *args) view() []byte {
	ptr, n := a.u32(), a.u32()
	b, ok := a.v.View(ptr, n)
	if !ok {
		a.bad = true
	}
	return b
}

// bytes is view with a copy the caller may keep.
func (a *args) bytes() []byte {
	ptr, n := a.u32(), a.u32()
	b, ok := a.v.Read(ptr, n)
	if !ok {
		a.bad = true
	}
	return b
}

// str is bytes as a string.
func (a *args) str() string {
	ptr, n := a.u32(), a.u32()
	s, ok := a.v.ReadString(ptr, n)
	if !ok {
		a.bad = true
	}
	return s
}

// ok reports whether every range read so far was inside guest memory.
func (a *args) ok() bool { return !a.bad }
