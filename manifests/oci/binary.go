package oci

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// RejectorBinaryName is the path (from /) of the dicomgate binary in the
// rejector image.
const RejectorBinaryName = "dicomgate"

// RejectorUser is the image's user: the distroless "nonroot" uid/gid, so
// that the image runs under runAsNonRoot without a passwd file.
const RejectorUser = "65532:65532"

// CheckLinuxBinary checks that b is a statically linked Linux executable
// (what `CGO_ENABLED=0 GOOS=linux go build` makes) and returns its GOARCH.
// The rejector image holds nothing else, so a dynamically linked binary
// could not start there.
func CheckLinuxBinary(b []byte) (string, error) {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return "", errors.New("not an ELF executable: build the CLI for Linux with CGO_ENABLED=0 GOOS=linux go build ./cmd/dicomgate")
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return "", fmt.Errorf("ELF type %v is not an executable", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", errors.New("dynamically linked (it needs an ELF interpreter the image does not have): build it with CGO_ENABLED=0")
		}
	}
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	}
	return "", fmt.Errorf("ELF machine %v: only amd64 and arm64 are supported", f.Machine)
}

// BuildRejector returns the reproducible container image of the rejector
// (`dicomgate reject`): one layer holding binary, a static Linux dicomgate
// CLI, as /dicomgate (mode 0555, owned by root), entrypoint /dicomgate,
// default arguments "reject", user 65532:65532, and nothing else (no shell,
// no libc: distroless-style). The same binary and format always give the
// same manifest digest. A Deployment passes the flags as args, starting with
// "reject" (manifests/components/rejector).
func BuildRejector(binary []byte, format Format) (v1.Image, error) {
	arch, err := CheckLinuxBinary(binary)
	if err != nil {
		return nil, err
	}
	layerBytes, err := fileTarGz(RejectorBinaryName, 0o555, binary, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	return singleLayerImage(layerBytes, format, v1.History{
		CreatedBy: "dicomgate push --rejector: COPY " + RejectorBinaryName + " /" + RejectorBinaryName,
		Comment:   "dicomgate reject: answers denied associations with an A-ASSOCIATE-RJ",
	}, func(cfg *v1.ConfigFile) {
		cfg.OS = "linux"
		cfg.Architecture = arch
		cfg.Config.Entrypoint = []string{"/" + RejectorBinaryName}
		cfg.Config.Cmd = []string{"reject"}
		cfg.Config.User = RejectorUser
		cfg.Config.WorkingDir = "/"
	})
}
