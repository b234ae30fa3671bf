package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// orthanc is a running Orthanc with its own storage, DICOM port and loopback-only REST API.
type orthanc struct {
	proc      *proc
	httpBase  string // http://127.0.0.1:PORT
	dicomPort int
	aet       string
}

// startOrthanc writes a configuration derived from testdata/orthanc-loopback.json (own storage, free ports, AE
// ORTHANC, DicomCheckCalledAet true) and starts `Orthanc --verbose CONFIG`, waiting until GET /system answers 200.
func startOrthanc(label string) (*orthanc, error) {
	raw, err := os.ReadFile(filepath.Join("testdata", "orthanc-loopback.json"))
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("testdata/orthanc-loopback.json: %w", err)
	}
	dir := filepath.Join(workDir, label)
	storage := filepath.Join(dir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	dicomPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg["Name"] = "dicomgate-e2e-" + label
	cfg["StorageDirectory"] = storage
	cfg["IndexDirectory"] = storage
	cfg["HttpPort"] = httpPort
	cfg["DicomPort"] = dicomPort
	cfg["DicomAet"] = "ORTHANC"
	cfg["DicomCheckCalledAet"] = true
	cfg["RemoteAccessAllowed"] = false
	cfg["DicomModalities"] = map[string]any{}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "orthanc.json")
	if err := os.WriteFile(cfgPath, out, 0o644); err != nil {
		return nil, err
	}
	p, err := startProc(label, nil, "Orthanc", "--verbose", cfgPath)
	if err != nil {
		return nil, err
	}
	o := &orthanc{proc: p, httpBase: fmt.Sprintf("http://127.0.0.1:%d", httpPort), dicomPort: dicomPort, aet: "ORTHANC"}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := o.get("/system"); err == nil {
			return o, nil
		} else if time.Now().After(deadline) {
			_ = p.stop()
			return nil, fmt.Errorf("orthanc: GET /system not 200 after 60 s (%v); output:\n%s", err, tail(p.out.String(), 60))
		}
		if done, werr := p.exited(); done {
			return nil, fmt.Errorf("orthanc exited during start-up (%v); output:\n%s", werr, tail(p.out.String(), 60))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func (o *orthanc) do(method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(method, o.httpBase+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("orthanc %s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return b, nil
}

func (o *orthanc) get(path string) ([]byte, error) { return o.do(http.MethodGet, path, nil) }

// instanceBySOPUID returns Orthanc's instance id for a SOP Instance UID ("" when Orthanc does not hold it).
func (o *orthanc) instanceBySOPUID(uid string) (string, error) {
	b, err := o.do(http.MethodPost, "/tools/lookup", []byte(uid))
	if err != nil {
		return "", err
	}
	var hits []struct{ ID, Type string }
	if err := json.Unmarshal(b, &hits); err != nil {
		return "", fmt.Errorf("orthanc /tools/lookup: %w (%s)", err, b)
	}
	for _, h := range hits {
		if h.Type == "Instance" {
			return h.ID, nil
		}
	}
	return "", nil
}

// deleteSOPUID removes an instance if Orthanc holds it, so a test can prove its own store landed.
func (o *orthanc) deleteSOPUID(uid string) error {
	id, err := o.instanceBySOPUID(uid)
	if err != nil || id == "" {
		return err
	}
	_, err = o.do(http.MethodDelete, "/instances/"+id, nil)
	return err
}

// instanceFile downloads the stored Part 10 file of the instance with the given SOP Instance UID.
func (o *orthanc) instanceFile(uid string) ([]byte, error) {
	id, err := o.instanceBySOPUID(uid)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, fmt.Errorf("orthanc holds no instance with SOP Instance UID %s", uid)
	}
	return o.get("/instances/" + id + "/file")
}

// sawCallingAE reports whether Orthanc's log shows an association from the calling AE title after the output
// position since (see proc.mark). Orthanc --verbose logs "Association Received from AET <calling> on IP ..." for
// every A-ASSOCIATE-RQ it parses.
func (o *orthanc) sawCallingAE(aet string, since int) bool {
	return len(grepLines(o.proc.outputSince(since), "Association Received from AET "+aet+" ")) > 0
}

// storeSCP is a running dcmtk storescp writing what it receives into dir.
type storeSCP struct {
	proc *proc
	port int
	dir  string
}

// startStoreSCP starts `storescp -d +xa -aet AET -od DIR PORT` (plain DICOM, any AE title accepted, every supported
// transfer syntax accepted) and waits until the port accepts connections. -d makes storescp log the calling and
// called AE titles of each association, which tests grep.
func startStoreSCP(label, aet string) (*storeSCP, error) {
	dir := filepath.Join(workDir, label, "received")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p, err := startProc(label, []string{"TCP_NODELAY=1"}, "storescp", "-d", "+xa", "-aet", aet, "-od", dir, strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	s := &storeSCP{proc: p, port: port, dir: dir}
	// The log line "DcmDataDictionary: Loading file" precedes listen(); poll the port without connecting to it (a
	// probe connection would appear in storescp's log as an association attempt).
	if err := waitListening(p, port, 20*time.Second); err != nil {
		_ = p.stop()
		return nil, err
	}
	return s, nil
}

// sawCallingAE reports whether storescp logged an association from the calling AE title after the output
// position since (see proc.mark).
func (s *storeSCP) sawCallingAE(aet string, since int) bool {
	for _, l := range grepLines(s.proc.outputSince(since), "Calling Application Name:") {
		if strings.TrimSpace(strings.SplitN(l, "Calling Application Name:", 2)[1]) == aet {
			return true
		}
	}
	return false
}

// receivedFile returns the path of the file storescp wrote for the SOP Instance UID ("" if none).
// storescp names files MODALITY.SOPInstanceUID (e.g. CT.1.2.3).
func (s *storeSCP) receivedFile(uid string) string {
	entries, _ := os.ReadDir(s.dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), "."+uid) {
			return filepath.Join(s.dir, e.Name())
		}
	}
	return ""
}

// removeReceived deletes what storescp received for uid, so a test can prove its own store landed.
func (s *storeSCP) removeReceived(uid string) {
	for p := s.receivedFile(uid); p != ""; p = s.receivedFile(uid) {
		_ = os.Remove(p)
	}
}

// portListening reports whether something listens on 127.0.0.1:port, by reading /proc/net/tcp (no connection).
func portListening(port int) bool {
	want := fmt.Sprintf(":%04X ", port)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			fields := strings.Fields(line)
			// fields: sl local_address rem_address st ...; st 0A = LISTEN
			if len(fields) > 3 && strings.HasSuffix(fields[1]+" ", want) && fields[3] == "0A" {
				return true
			}
		}
	}
	return false
}
