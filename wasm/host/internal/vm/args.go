package vm

// Args reads the arguments of one import call in order, as cpp-host's exports.cc does with its Word
// arguments: scalars are one stack slot each, a guest memory range is a (pointer, length) pair. A
// range outside guest memory yields an empty value and makes OK false: the import then returns its
// memory-fault result (INVALID_MEMORY_ACCESS for proxy_*, EFAULT for WASI). It is the one argument
// reader of the env (package abi) and WASI (package wasi) imports, instead of a read-and-check
// stanza per argument; it lives on the caller's stack (no allocation).
type Args struct {
	v   *VM
	s   []uint64
	i   int
	bad bool
}

// ArgsOf starts reading the arguments in s of a call by v.
func ArgsOf(v *VM, s []uint64) Args { return Args{v: v, s: s} }

// U32 reads the next argument as an i32.
func (a *Args) U32() uint32 {
	x := uint32(a.s[a.i])
	a.i++
	return x
}

// U64 reads the next argument as an i64.
func (a *Args) U64() uint64 {
	x := a.s[a.i]
	a.i++
	return x
}

// Skip passes over n arguments the import does not use.
func (a *Args) Skip(n int) { a.i += n }

// View reads a (pointer, length) pair and returns that guest memory without a copy: only valid
// until the guest runs again (VM.View).
func (a *Args) View() []byte {
	ptr, n := a.U32(), a.U32()
	b, ok := a.v.View(ptr, n)
	if !ok {
		a.bad = true
	}
	return b
}

// Bytes is View with a copy the caller may keep.
func (a *Args) Bytes() []byte {
	ptr, n := a.U32(), a.U32()
	b, ok := a.v.Read(ptr, n)
	if !ok {
		a.bad = true
	}
	return b
}

// Str is Bytes as a string.
func (a *Args) Str() string {
	ptr, n := a.U32(), a.U32()
	s, ok := a.v.ReadString(ptr, n)
	if !ok {
		a.bad = true
	}
	return s
}

// OK reports whether every range read so far was inside guest memory.
func (a *Args) OK() bool { return !a.bad }

// Returning adapts an import that returns its i32 result (a proxy_status_t or a WASI errno) to
// HostFunc.Fn, which leaves results on the stack: every return path sets the result once.
func Returning(fn func(v *VM, s []uint64) uint32) func(v *VM, s []uint64) {
	return func(v *VM, s []uint64) { s[0] = uint64(fn(v, s)) }
}
