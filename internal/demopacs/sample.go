package demopacs

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// SecondaryCaptureSOPClass is the SOP class of the sample instance.
const SecondaryCaptureSOPClass = "1.2.840.10008.5.1.4.1.1.7"

// NewUID returns a fresh UID under the 2.25 root (a random 122-bit UUID
// written as a decimal integer, PS3.5 §B.2).
func NewUID() string {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 122))
	if err != nil {
		n = big.NewInt(time.Now().UnixNano())
	}
	return "2.25." + n.String()
}

// WriteSample writes a small valid DICOM Part 10 file to path (atomically):
// an 8×8 8-bit MONOCHROME2 Secondary Capture image of patient
// DEMO^PATIENT, explicit VR little endian, with fresh study, series and
// instance UIDs. It returns the SOP Instance UID. `dicomgate serve` writes one
// so the printed storescu command works out of the box.
func WriteSample(path string) (string, error) {
	inst := NewUID()
	var ds []byte
	el := func(group, elem uint16, vr string, v []byte) { ds = appendExplicit(ds, group, elem, vr, v) }
	us := func(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
	today := []byte(time.Now().UTC().Format("20060102"))
	el(0x0008, 0x0016, "UI", []byte(SecondaryCaptureSOPClass))
	el(0x0008, 0x0018, "UI", []byte(inst))
	el(0x0008, 0x0020, "DA", today)
	el(0x0008, 0x0060, "CS", []byte("OT"))
	el(0x0008, 0x0064, "CS", []byte("WSD"))
	el(0x0010, 0x0010, "PN", []byte("DEMO^PATIENT"))
	el(0x0010, 0x0020, "LO", []byte("DEMO-0001"))
	el(0x0020, 0x000D, "UI", []byte(NewUID()))
	el(0x0020, 0x000E, "UI", []byte(NewUID()))
	el(0x0020, 0x0013, "IS", []byte("1"))
	el(0x0028, 0x0002, "US", us(1))
	el(0x0028, 0x0004, "CS", []byte("MONOCHROME2"))
	el(0x0028, 0x0010, "US", us(8))
	el(0x0028, 0x0011, "US", us(8))
	el(0x0028, 0x0100, "US", us(8))
	el(0x0028, 0x0101, "US", us(8))
	el(0x0028, 0x0102, "US", us(7))
	el(0x0028, 0x0103, "US", us(0))
	pixels := make([]byte, 64)
	for i := range pixels {
		pixels[i] = byte((i%8 + i/8) * 18)
	}
	el(0x7FE0, 0x0010, "OB", pixels)

	file := append(FileMetaInformation(SecondaryCaptureSOPClass, inst, ExplicitVRLittleEndian, ""), ds...)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".sample-*.tmp")
	if err != nil {
		return "", fmt.Errorf("writing sample instance: %w", err)
	}
	_, err = tmp.Write(file)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("writing sample instance %s: %w", path, err)
	}
	return inst, nil
}
