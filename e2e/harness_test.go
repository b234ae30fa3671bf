package e2e

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/stretchr/testify/require"
	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	orthancPeer  shared[*orthanc]
	storescpPeer shared[*storeSCP]
	sentFilesSh  shared[[]sentFile]
)

// theOrthanc is the Orthanc shared by the whole run.
func theOrthanc(t testing.TB) *orthanc {
	t.Helper()
	return orthancPeer.get(t, func() (*orthanc, error) { return startOrthanc("orthanc") })
}

// theStoreSCP is the storescp (AE STORESCP) shared by the whole run.
func theStoreSCP(t testing.TB) *storeSCP {
	t.Helper()
	return storescpPeer.get(t, func() (*storeSCP, error) { return startStoreSCP("storescp", "STORESCP") })
}

// storableFiles are the Part 10 instances in testdata/dcm (files without a SOP Instance UID, such as the worklist
// query wlq0.dcm, are not storable and are left out).
func storableFiles(t testing.TB) []sentFile {
	t.Helper()
	return sentFilesSh.get(t, func() ([]sentFile, error) {
		paths, err := filepath.Glob(filepath.Join("testdata", "dcm", "*.dcm"))
		if err != nil {
			return nil, err
		}
		sort.Strings(paths)
		var out []sentFile
		for _, p := range paths {
			f, err := loadPart10(p)
			if err != nil {
				if strings.Contains(err.Error(), "no SOP Instance UID") {
					continue
				}
				return nil, err
			}
			out = append(out, f)
		}
		return out, nil
	})
}

func filePaths(files []sentFile) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	return out
}

// assertStoredInOrthanc checks that Orthanc holds every file and that each stored dataset equals the one sent.
func assertStoredInOrthanc(t *testing.T, o *orthanc, files []sentFile) {
	t.Helper()
	// Every file is checked; the differences of all of them are reported together.
	var problems []string
	var ids []string
	if b, err := o.get("/instances"); err != nil {
		problems = append(problems, fmt.Sprintf("orthanc GET /instances: %v", err))
	} else if err := json.Unmarshal(b, &ids); err != nil {
		problems = append(problems, fmt.Sprintf("orthanc GET /instances: %v (%s)", err, b))
	}
	for _, f := range files {
		if id, err := o.instanceBySOPUID(f.SOPInstanceUID); err == nil && id != "" && !slices.Contains(ids, id) {
			problems = append(problems, fmt.Sprintf("%s: instance %s missing from GET /instances", filepath.Base(f.Path), id))
		}
		b, err := o.instanceFile(f.SOPInstanceUID)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", filepath.Base(f.Path), err))
			continue
		}
		got, err := parsePart10(b)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: parse the file Orthanc stored: %v", filepath.Base(f.Path), err))
			continue
		}
		logTransferSyntax(t, "Orthanc", f, got)
		if d := compareDatasets(f.Dataset, got); len(d) > 0 {
			problems = append(problems, fmt.Sprintf("%s: Orthanc's stored dataset differs from the one sent:\n  %s", filepath.Base(f.Path), strings.Join(d, "\n  ")))
		}
	}
	require.Empty(t, strings.Join(problems, "\n"), "files stored in Orthanc")
}

// assertStoredInStoreSCP checks that storescp wrote every file and that each dataset equals the one sent.
func assertStoredInStoreSCP(t *testing.T, s *storeSCP, files []sentFile) {
	t.Helper()
	// Every file is checked; the differences of all of them are reported together.
	var problems []string
	for _, f := range files {
		p := s.receivedFile(f.SOPInstanceUID)
		if p == "" {
			problems = append(problems, fmt.Sprintf("%s: storescp wrote no file for SOP Instance UID %s in %s", filepath.Base(f.Path), f.SOPInstanceUID, s.dir))
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		got, err := parsePart10(b)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: parse %s: %v", filepath.Base(f.Path), p, err))
			continue
		}
		logTransferSyntax(t, "storescp", f, got)
		if d := compareDatasets(f.Dataset, got); len(d) > 0 {
			problems = append(problems, fmt.Sprintf("%s: storescp's file differs from the one sent:\n  %s", filepath.Base(f.Path), strings.Join(d, "\n  ")))
		}
	}
	require.Empty(t, strings.Join(problems, "\n"), "files written by storescp")
}

// logTransferSyntax notes when the receiver stored a file in another transfer syntax than the file had (allowed:
// the values are compared, not the encoding).
func logTransferSyntax(t *testing.T, who string, f sentFile, got dicom.Dataset) {
	t.Helper()
	if ts := stringValue(got, tag.TransferSyntaxUID); ts != f.TransferSyntax {
		t.Logf("%s: %s stored it as %s (file: %s)", filepath.Base(f.Path), who, ts, f.TransferSyntax)
	}
}

// storeArgs is the storescu command line used everywhere: propose JPEG lossless plus the uncompressed transfer
// syntaxes, only for the SOP classes of the files (-R), so every file travels in the transfer syntax it has.
func storeArgs(tlsArgs []string, callingAE, calledAE string, port int, files []sentFile) []string {
	args := append([]string{"-v", "-xs", "-R", "-aet", callingAE, "-aec", calledAE}, tlsArgs...)
	args = append(args, "127.0.0.1", strconv.Itoa(port))
	return append(args, filePaths(files)...)
}

// TestHarnessPeersDirect proves the peers, the dataset comparison and the log probes without any gateway: storescu
// stores every test file straight into Orthanc and into storescp, and what each stored equals what was sent. If this
// fails, the gateway scenarios cannot be trusted either.
func TestHarnessPeersDirect(t *testing.T) {
	o, s, files := theOrthanc(t), theStoreSCP(t), storableFiles(t)
	require.GreaterOrEqual(t, len(files), 4, "expected at least 4 storable files in testdata/dcm")
	for _, f := range files {
		require.NoError(t, o.deleteSOPUID(f.SOPInstanceUID))
		s.removeReceived(f.SOPInstanceUID)
	}
	om, sm := o.proc.mark(), s.proc.mark()
	r := runTool(60*time.Second, "storescu", storeArgs(nil, "HARNESS_SCU", "ORTHANC", o.dicomPort, files)...)
	if r.exitCode != 0 {
		o.proc.dump(t)
	}
	require.Zero(t, r.exitCode, "storescu straight to Orthanc failed:\n%s", r)
	assertStoredInOrthanc(t, o, files)
	if !o.sawCallingAE("HARNESS_SCU", om) {
		o.proc.dump(t)
		require.FailNow(t, "Orthanc's log shows no association from HARNESS_SCU; the log probe used by the gateway tests is broken")
	}
	r = runTool(60*time.Second, "storescu", storeArgs(nil, "HARNESS_SCU", "STORESCP", s.port, files)...)
	if r.exitCode != 0 {
		s.proc.dump(t)
	}
	require.Zero(t, r.exitCode, "storescu straight to storescp failed:\n%s", r)
	assertStoredInStoreSCP(t, s, files)
	if !s.sawCallingAE("HARNESS_SCU", sm) {
		s.proc.dump(t)
		require.FailNow(t, "storescp's log shows no association from HARNESS_SCU; the log probe used by the gateway tests is broken")
	}
	// A wrong called AE is refused by Orthanc itself (DicomCheckCalledAet true): the rewrite scenario relies on it.
	r = runTool(30*time.Second, "echoscu", "-aet", "HARNESS_SCU", "-aec", "PUBLIC_PACS", "127.0.0.1", strconv.Itoa(o.dicomPort))
	require.True(t, r.exitCode != 0 && strings.Contains(r.out, "Called AE Title Not Recognized"),
		"Orthanc accepted called AE PUBLIC_PACS directly; DicomCheckCalledAet is not in effect:\n%s", r)
}

// TestHarnessTLSDirect proves the generated PKI works with dcmtk's TLS: storescp with the server certificate
// verifies dcmtk clients presenting each client certificate.
func TestHarnessTLSDirect(t *testing.T) {
	dir := t.TempDir()
	port := mustFreePort(t)
	p, err := startProc("storescp-tls-direct", []string{"TCP_NODELAY=1"}, "storescp", "-d", "+tls", certs.Server.Key,
		certs.Server.Cert, "+cf", certs.CAFile, "-od", dir, strconv.Itoa(port))
	require.NoError(t, err)
	defer p.stop()
	require.NoError(t, waitListening(p, port, 20*time.Second))
	for _, kp := range []keyPair{certs.CT1, certs.MR1, certs.NoSAN} {
		t.Run(filepath.Base(kp.Cert), func(t *testing.T) {
			r := runTool(30*time.Second, "echoscu", "-v", "+tls", kp.Key, kp.Cert, "+cf", certs.CAFile, "-aet", "TLS_HARNESS",
				"127.0.0.1", strconv.Itoa(port))
			if r.exitCode != 0 {
				p.dump(t)
			}
			require.Zero(t, r.exitCode, "echoscu +tls with %s failed:\n%s", filepath.Base(kp.Cert), r)
		})
	}
	// Anonymous TLS against a server that requires a client certificate (storescp default -rc) must fail: proves
	// the server side really checks client certificates.
	r := runTool(30*time.Second, "echoscu", "+tla", "+cf", certs.CAFile, "127.0.0.1", strconv.Itoa(port))
	require.NotZero(t, r.exitCode, "anonymous TLS client accepted by storescp -rc:\n%s", r)
}
