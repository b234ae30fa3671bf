package e2e

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// sentFile is one Part 10 file from testdata/dcm with the identifiers the tests look it up by.
type sentFile struct {
	Path           string
	SOPClassUID    string
	SOPInstanceUID string
	TransferSyntax string
	Dataset        dicom.Dataset
}

// loadPart10 parses a Part 10 file (pixel data included).
func loadPart10(path string) (sentFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return sentFile{}, err
	}
	ds, err := parsePart10(b)
	if err != nil {
		return sentFile{}, fmt.Errorf("%s: %w", path, err)
	}
	f := sentFile{Path: path, Dataset: ds}
	f.SOPClassUID = stringValue(ds, tag.SOPClassUID)
	f.SOPInstanceUID = stringValue(ds, tag.SOPInstanceUID)
	f.TransferSyntax = stringValue(ds, tag.TransferSyntaxUID)
	if f.SOPInstanceUID == "" {
		return sentFile{}, fmt.Errorf("%s: no SOP Instance UID (0008,0018)", path)
	}
	return f, nil
}

func parsePart10(b []byte) (dicom.Dataset, error) {
	return dicom.Parse(bytes.NewReader(b), int64(len(b)), nil)
}

func stringValue(ds dicom.Dataset, t tag.Tag) string {
	e, err := ds.FindElementByTag(t)
	if err != nil {
		return ""
	}
	if s, ok := e.Value.GetValue().([]string); ok && len(s) > 0 {
		return strings.TrimRight(s[0], " \x00")
	}
	return ""
}

// compareDatasets reports how got differs from want, element by element, ignoring the File Meta Information group
// (0002,xxxx), which every receiver rewrites (source AE, implementation UID, and the transfer syntax: storescu may
// send an implicit-VR file as explicit VR when the acceptor prefers it). Values are compared with the library's
// Value.Equals, which compares decoded values, so the result does not depend on the transfer syntax; pixel data
// (native frames or encapsulated fragments) is compared sample by sample / byte for byte.
func compareDatasets(want, got dicom.Dataset) []string {
	var diffs []string
	index := func(ds dicom.Dataset) ([]tag.Tag, map[tag.Tag]*dicom.Element) {
		var order []tag.Tag
		m := map[tag.Tag]*dicom.Element{}
		for _, e := range ds.Elements {
			if e.Tag.Group == 0x0002 {
				continue
			}
			if _, dup := m[e.Tag]; !dup {
				order = append(order, e.Tag)
			}
			m[e.Tag] = e
		}
		return order, m
	}
	wOrder, wm := index(want)
	gOrder, gm := index(got)
	for _, t := range wOrder {
		ge, ok := gm[t]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s: sent, missing from the stored file", t))
			continue
		}
		we := wm[t]
		if !we.Value.Equals(ge.Value) {
			diffs = append(diffs, fmt.Sprintf("%s: sent %s, stored %s", t, short(we.Value.String()), short(ge.Value.String())))
		}
	}
	for _, t := range gOrder {
		if _, ok := wm[t]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: not sent, present in the stored file (%s)", t, short(gm[t].Value.String())))
		}
	}
	return diffs
}

func short(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}
