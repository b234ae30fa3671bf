package demopacs

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// pendingStore streams one received data set into a temporary file in the
// target directory and renames it into place only when complete, so the
// directory never holds a half-written instance under its final name.
type pendingStore struct {
	info Stored
	f    *os.File
	w    *bufio.Writer
	tmp  string
	err  error
}

func newPendingStore(dir string, info Stored) *pendingStore {
	p := &pendingStore{info: info}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.err = fmt.Errorf("creating storage directory: %w", err)
		return p
	}
	info.Path = filepath.Join(dir, instanceFileName(info.SOPInstanceUID))
	p.info.Path = info.Path
	f, err := os.CreateTemp(dir, ".incoming-*.dcm.tmp")
	if err != nil {
		p.err = fmt.Errorf("creating temporary file: %w", err)
		return p
	}
	p.f, p.tmp = f, f.Name()
	p.w = bufio.NewWriterSize(f, 64<<10)
	_, p.err = p.w.Write(FileMetaInformation(info.SOPClassUID, info.SOPInstanceUID, info.TransferSyntaxUID, info.CallingAETitle))
	return p
}

func (p *pendingStore) write(b []byte) {
	p.info.DataSetBytes += int64(len(b))
	if p.err != nil || p.w == nil {
		return
	}
	_, p.err = p.w.Write(b)
}

// finish flushes, syncs and renames the file into place.
func (p *pendingStore) finish() (Stored, error) {
	if p.err == nil && p.w != nil {
		p.err = p.w.Flush()
	}
	if p.err == nil && p.f != nil {
		p.err = p.f.Sync()
	}
	if p.f != nil {
		if err := p.f.Close(); p.err == nil {
			p.err = err
		}
	}
	if p.err == nil {
		p.err = os.Rename(p.tmp, p.info.Path)
	}
	if p.err != nil {
		if p.tmp != "" {
			os.Remove(p.tmp)
		}
		return p.info, p.err
	}
	return p.info, nil
}

// discard abandons the file.
func (p *pendingStore) discard() {
	if p.f != nil {
		p.f.Close()
		os.Remove(p.tmp)
	}
}

// instanceFileName derives a safe file name from a SOP Instance UID (UIDs
// only contain digits and dots; anything else is replaced).
func instanceFileName(uid string) string {
	var b strings.Builder
	for _, r := range uid {
		if (r >= '0' && r <= '9') || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := strings.Trim(b.String(), ".")
	if name == "" {
		name = fmt.Sprintf("instance-%d", time.Now().UnixNano())
	}
	return name + ".dcm"
}

// FileMetaInformation returns the start of a DICOM Part 10 file (PS3.10
// §7.1): the 128-byte preamble, "DICM", and the group 0002 file meta
// information in explicit VR little endian with MediaStorageSOPClassUID,
// MediaStorageSOPInstanceUID, TransferSyntaxUID, this implementation's class
// UID and version name, and (when non-empty) SourceApplicationEntityTitle.
// The data set, encoded in transferSyntax, follows it.
func FileMetaInformation(sopClass, sopInstance, transferSyntax, sourceAE string) []byte {
	var body []byte
	body = appendMeta(body, 0x0001, "OB", []byte{0x00, 0x01})
	body = appendMeta(body, 0x0002, "UI", []byte(sopClass))
	body = appendMeta(body, 0x0003, "UI", []byte(sopInstance))
	body = appendMeta(body, 0x0010, "UI", []byte(transferSyntax))
	body = appendMeta(body, 0x0012, "UI", []byte(ImplementationClassUID))
	body = appendMeta(body, 0x0013, "SH", []byte(ImplementationVersionName))
	if sourceAE != "" {
		body = appendMeta(body, 0x0016, "AE", []byte(sourceAE))
	}
	out := make([]byte, 128, 128+4+12+len(body))
	out = append(out, "DICM"...)
	out = appendMeta(out, 0x0000, "UL", binary.LittleEndian.AppendUint32(nil, uint32(len(body))))
	return append(out, body...)
}

// appendMeta appends one group 0002 (file meta) element in explicit VR little
// endian, its value padded to even length (NUL for UI and OB, space for the
// text VRs; PS3.5 §6.2).
func appendMeta(dst []byte, elem uint16, vr string, value []byte) []byte {
	pad := byte(' ')
	if vr == "UI" || vr == "OB" {
		pad = 0
	}
	value = padEven(value, pad)
	dst = binary.LittleEndian.AppendUint16(dst, 0x0002)
	dst = binary.LittleEndian.AppendUint16(dst, elem)
	dst = append(dst, vr...)
	switch vr {
	case "OB", "OW", "OF", "OD", "OL", "OV", "SQ", "UT", "UN", "UC", "UR", "SV", "UV":
		dst = append(dst, 0, 0)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(value)))
	default:
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(value)))
	}
	return append(dst, value...)
}
