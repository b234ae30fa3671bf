package demopacs

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
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
// instance UIDs, encoded by suyashkumar/dicom. It returns the SOP Instance
// UID. `dicomgate serve` writes one so the printed storescu command works out
// of the box.
func WriteSample(path string) (string, error) {
	inst := NewUID()
	today := time.Now().UTC().Format("20060102")
	pixels := make([]byte, 64)
	for i := range pixels {
		pixels[i] = byte((i%8 + i/8) * 18)
	}
	var elems []*dicom.Element
	var err error
	add := func(t tag.Tag, v any) {
		if err != nil {
			return
		}
		var e *dicom.Element
		if e, err = dicom.NewElement(t, v); err == nil {
			elems = append(elems, e)
		}
	}
	add(tag.FileMetaInformationVersion, []byte{0x00, 0x01})
	add(tag.MediaStorageSOPClassUID, []string{SecondaryCaptureSOPClass})
	add(tag.MediaStorageSOPInstanceUID, []string{inst})
	add(tag.TransferSyntaxUID, []string{ExplicitVRLittleEndian})
	add(tag.ImplementationClassUID, []string{ImplementationClassUID})
	add(tag.ImplementationVersionName, []string{ImplementationVersionName})
	add(tag.SOPClassUID, []string{SecondaryCaptureSOPClass})
	add(tag.SOPInstanceUID, []string{inst})
	add(tag.StudyDate, []string{today})
	add(tag.Modality, []string{"OT"})
	add(tag.ConversionType, []string{"WSD"})
	add(tag.PatientName, []string{"DEMO^PATIENT"})
	add(tag.PatientID, []string{"DEMO-0001"})
	add(tag.StudyInstanceUID, []string{NewUID()})
	add(tag.SeriesInstanceUID, []string{NewUID()})
	add(tag.InstanceNumber, []string{"1"})
	add(tag.SamplesPerPixel, []int{1})
	add(tag.PhotometricInterpretation, []string{"MONOCHROME2"})
	add(tag.Rows, []int{8})
	add(tag.Columns, []int{8})
	add(tag.BitsAllocated, []int{8})
	add(tag.BitsStored, []int{8})
	add(tag.HighBit, []int{7})
	add(tag.PixelRepresentation, []int{0})
	if err != nil {
		return "", fmt.Errorf("building the sample instance: %w", err)
	}
	// Native 8-bit pixel data as OB bytes (PS3.5 §8.2: OB or OW).
	px, err := dicom.NewValue(pixels)
	if err != nil {
		return "", fmt.Errorf("building the sample instance: %w", err)
	}
	elems = append(elems, &dicom.Element{Tag: tag.PixelData, ValueRepresentation: tag.VRBytes, RawValueRepresentation: "OB", Value: px})
	var file bytes.Buffer
	if err := dicom.Write(&file, dicom.Dataset{Elements: elems}, dicom.SkipValueTypeVerification()); err != nil {
		return "", fmt.Errorf("encoding the sample instance: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".sample-*.tmp")
	if err != nil {
		return "", fmt.Errorf("writing sample instance: %w", err)
	}
	_, err = tmp.Write(file.Bytes())
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
