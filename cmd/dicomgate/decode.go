package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// decodeFlags are the options of `dicomgate decode`.
type decodeFlags struct {
	// output is the format: text, json (one object per PDU and line) or
	// yaml (one document per PDU).
	output string
	strict bool
	maxPDU uint32
}

func init() {
	var f decodeFlags
	cmd := &cobra.Command{
		Use:   "decode [FILE|-]",
		Short: "Decode a byte stream of DICOM Upper Layer PDUs",
		Long: `Decode a byte stream of DICOM Upper Layer PDUs (one direction of an
association, e.g. a capture's NAME.c2s.bin) from FILE or standard input and
print each PDU: human-readable text by default, one JSON object per line with
-o json (or --json), one YAML document per PDU with -o yaml. User identity
passcodes and tokens are never printed.

On bad input everything decoded before it is printed on standard output,
then a one-line error naming the byte offset on standard error, and the exit
status is 2. An empty input is an error too (exit status 2).`,
		Example: `  dicomgate decode sdk/pdu/testdata/echo_custom_ae.c2s.bin
  dicomgate decode -o json sdk/pdu/testdata/uid_username.c2s.bin`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usage("unexpected argument %q: decode reads one FILE (or standard input)", args[1])
			}
			return nil
		},
	}
	o := addOutputFlag(cmd, formatText, formatJSON, formatYAML)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		name := "-"
		if len(args) == 1 {
			name = args[0]
		}
		f.output = o.format()
		return runDecode(cmd.InOrStdin(), cmd.OutOrStdout(), name, f)
	}
	cmd.Flags().BoolVar(&f.strict, "strict", false, "also reject what DICOM PS3.8 forbids but real stacks tolerate (bad AE titles, missing items, even context IDs, ...)")
	cmd.Flags().Uint32Var(&f.maxPDU, "max-pdu-length", pdu.DefaultMaxPDULength, "largest PDU length field accepted (bytes after the 6-byte header)")
	rootCmd.AddCommand(cmd)
}

// runDecode implements `dicomgate decode`.
func runDecode(stdin io.Reader, stdout io.Writer, name string, f decodeFlags) error {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(stdin)
		name = "stdin"
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return invalid(err)
	}
	if len(data) == 0 {
		return invalid(fmt.Errorf("%s: is empty; expected DICOM Upper Layer PDUs (one direction of an association, e.g. a capture's NAME.c2s.bin)", name))
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	v := pduViewer{dec: pdu.Decoder{MaxPDULength: f.maxPDU}}
	if f.strict {
		v.dec = *v.dec.Strict()
	}
	fr := pdu.Framer{MaxPDULength: f.maxPDU}
	for off, n := 0, 0; off < len(data); n++ {
		rest := data[off:]
		h, need, err := fr.Peek(rest)
		if err == nil && need > 0 {
			if len(rest) < pdu.HeaderLen {
				return invalid(fmt.Errorf("%s: offset %d: input ends inside a PDU header (%d of 6 bytes)", name, off, len(rest)))
			}
			return invalid(fmt.Errorf("%s: offset %d: input ends inside %s: have %d of %d bytes (truncated capture?)", name, off, h.Type, len(rest), h.Total()))
		}
		var pv *pduView
		if err == nil {
			pv, err = v.view(off, rest[:h.Total()])
		}
		if err != nil {
			return invalid(decodeError(name, off, h, err))
		}
		switch f.output {
		case formatJSON:
			err = writeJSON(w, pv)
		case formatYAML:
			err = writeYAML(w, pv, n > 0)
		default:
			writeText(w, pv)
		}
		if err != nil {
			return err
		}
		off += h.Total()
	}
	return nil
}

// decodeError renders a decoding error of the PDU at stream offset off with
// one stream offset: the offending field's, followed by the PDU it lies in
// when that starts elsewhere.
func decodeError(name string, off int, h pdu.Header, err error) error {
	var pe *pdu.Error
	if !errors.As(err, &pe) {
		return fmt.Errorf("%s: offset %d: %w", name, off, err)
	}
	at := off
	if pe.Offset >= 0 {
		at = off + pe.Offset
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: offset %d", name, at)
	if at != off {
		fmt.Fprintf(&b, " (in the %s at offset %d)", h.Type, off)
	}
	if pe.Field != "" {
		b.WriteString(": " + pe.Field)
	}
	switch {
	case pe.Msg != "":
		// The framer's hint names its Go field; here the knob is the flag.
		b.WriteString(": " + strings.Replace(pe.Msg, "raise MaxPDULength", "raise --max-pdu-length", 1))
	case pe.Err != nil:
		b.WriteString(": " + pe.Err.Error())
	}
	return errors.New(b.String())
}

// writeText prints a PDU view for humans. It renders only the view, which
// holds no passcode or token.
func writeText(w io.Writer, v *pduView) {
	fmt.Fprintf(w, "@%d %s (type 0x%02x, length %d)\n", v.Offset, v.Type, v.PDUType, v.Length)
	if v.RefusedAsMalformed != nil {
		fmt.Fprintf(w, "  REFUSED by the filter as malformed (a PACS could read it differently): %s\n", *v.RefusedAsMalformed)
	}
	if v.ProtocolVersion != nil {
		fmt.Fprintf(w, "  protocol version:    %d\n", *v.ProtocolVersion)
		fmt.Fprintf(w, "  called AE title:     %q\n", *v.CalledAETitle)
		fmt.Fprintf(w, "  calling AE title:    %q\n", *v.CallingAETitle)
		fmt.Fprintf(w, "  application context: %s\n", *v.ApplicationContext)
	}
	switch pcs := v.PresentationContexts.(type) {
	case []pcRQView:
		for _, pc := range pcs {
			fmt.Fprintf(w, "  presentation context %d: %s\n", pc.ID, pc.AbstractSyntax)
			for _, ts := range pc.TransferSyntaxes {
				fmt.Fprintf(w, "    transfer syntax %s\n", ts)
			}
		}
	case []pcACView:
		for _, pc := range pcs {
			fmt.Fprintf(w, "  presentation context %d: %s", pc.ID, pdu.PCResult(pc.Result))
			if pc.TransferSyntax != "" {
				fmt.Fprintf(w, ", transfer syntax %s", pc.TransferSyntax)
			}
			fmt.Fprintln(w)
		}
	}
	if u := v.UserInformation; u != nil {
		if u.MaxPDULength != nil {
			fmt.Fprintf(w, "  max PDU length:      %d\n", *u.MaxPDULength)
		}
		fmt.Fprintf(w, "  implementation:      %s %s\n", u.ImplementationClassUID, u.ImplementationVersionName)
		if u.AsyncOps != nil {
			fmt.Fprintf(w, "  async operations:    invoked %d, performed %d\n", u.AsyncOps.MaxInvoked, u.AsyncOps.MaxPerformed)
		}
		for _, r := range u.RoleSelections {
			fmt.Fprintf(w, "  role selection:      %s SCU %d SCP %d\n", r.SOPClassUID, r.SCURole, r.SCPRole)
		}
		if id := u.UserIdentity; id != nil {
			switch {
			case id.ServerResponseLength != nil:
				fmt.Fprintf(w, "  user identity response: %d bytes\n", *id.ServerResponseLength)
			case id.PrimaryField != nil:
				fmt.Fprintf(w, "  user identity:       type %d, username %q, positive response requested %v\n", *id.Type, *id.PrimaryField, *id.PositiveResponseRequested)
			default:
				fmt.Fprintf(w, "  user identity:       type %d, %d-byte primary field (not shown), positive response requested %v\n", *id.Type, *id.PrimaryFieldLength, *id.PositiveResponseRequested)
			}
		}
	}
	if v.Result != nil {
		fmt.Fprintf(w, "  result %d, source %d, reason %d\n", *v.Result, *v.Source, *v.Reason)
	} else if v.Source != nil {
		fmt.Fprintf(w, "  source %d, reason %d\n", *v.Source, *v.Reason)
	}
	if v.PDVs != nil {
		for _, d := range *v.PDVs {
			kind := "data set"
			if d.Command {
				kind = "command"
			}
			var extra []string
			if d.Last {
				extra = append(extra, "last")
			}
			if d.CommandField != "" {
				extra = append(extra, d.CommandField+" "+d.SOPClassUID)
			}
			if d.CommandError != "" {
				extra = append(extra, "undecodable command: "+d.CommandError)
			}
			fmt.Fprintf(w, "  PDV context %d, %s fragment, %d bytes", d.ContextID, kind, d.Length)
			if len(extra) > 0 {
				fmt.Fprintf(w, ", %s", strings.Join(extra, ", "))
			}
			fmt.Fprintln(w)
		}
	}
}
