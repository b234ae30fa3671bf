package main

import (
	"bufio"
	"encoding/json"
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
	json   bool
	strict bool
	maxPDU uint32
}

func init() {
	var f decodeFlags
	cmd := &cobra.Command{
		Use:   "decode [--json] [FILE|-]",
		Short: "Decode a byte stream of DICOM Upper Layer PDUs",
		Long: `Decode a byte stream of DICOM Upper Layer PDUs (one direction of an
association, e.g. a capture's NAME.c2s.bin) from FILE or standard input and
print each PDU: human-readable text by default, one JSON object per line with
--json. User identity passcodes and tokens are never printed.

On bad input everything decoded before it is printed, then a one-line error
naming the byte offset, and the exit status is 1.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := "-"
			if len(args) == 1 {
				name = args[0]
			}
			return runDecode(cmd.InOrStdin(), cmd.OutOrStdout(), name, f)
		},
	}
	cmd.Flags().BoolVar(&f.json, "json", false, "print one JSON object per PDU and line")
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
		return &exitError{1, fmt.Errorf("decode: %w", err)}
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	v := pduViewer{dec: pdu.Decoder{Strict: f.strict, MaxPDULength: f.maxPDU}}
	fr := pdu.Framer{MaxPDULength: f.maxPDU}
	for off := 0; off < len(data); {
		rest := data[off:]
		h, need, err := fr.Peek(rest)
		if err == nil && need > 0 {
			if len(rest) < pdu.HeaderLen {
				return &exitError{1, fmt.Errorf("%s: offset %d: input ends inside a PDU header (%d of 6 bytes)", name, off, len(rest))}
			}
			return &exitError{1, fmt.Errorf("%s: offset %d: input ends inside %s: have %d of %d bytes (truncated capture?)", name, off, h.Type, len(rest), h.Total())}
		}
		var pv *pduView
		if err == nil {
			pv, err = v.view(off, rest[:h.Total()])
		}
		if err != nil {
			return &exitError{1, fmt.Errorf("%s: PDU at offset %d: %w", name, off, absolute(err, off))}
		}
		if f.json {
			if err := enc.Encode(pv); err != nil {
				return err
			}
		} else {
			writeText(w, pv)
		}
		off += h.Total()
	}
	return nil
}

// absolute rewrites a *pdu.Error's PDU-relative offset as a stream offset.
func absolute(err error, base int) error {
	var pe *pdu.Error
	if errors.As(err, &pe) && pe.Offset >= 0 {
		c := *pe
		c.Offset += base
		return &c
	}
	return err
}

// writeText prints a PDU view for humans. It renders only the view, which
// holds no passcode or token.
func writeText(w io.Writer, v *pduView) {
	fmt.Fprintf(w, "@%d %s (type 0x%02x, length %d)\n", v.Offset, v.Type, v.PDUType, v.Length)
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
			fmt.Fprintf(w, "  presentation context %d: %s", pc.ID, pcResult(pc.Result))
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

// pcResult names an A-ASSOCIATE-AC presentation context result.
func pcResult(r uint8) string {
	switch r {
	case 0:
		return "accepted"
	case 1:
		return "user-rejection"
	case 2:
		return "no-reason (provider rejection)"
	case 3:
		return "abstract-syntax-not-supported"
	case 4:
		return "transfer-syntaxes-not-supported"
	}
	return fmt.Sprintf("result %d", r)
}
