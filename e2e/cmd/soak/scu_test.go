package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// The two-identities RQ is well framed, carries "alice" then "mallory" as
// user-identity sub-items, and sdk/pdu refuses it as ambiguous (so the soak
// row tests the refusal, not a broken encoding).
func TestTwoIdentitiesRQ(t *testing.T) {
	b := rqTwoIdentities("SOAK", "PACS_A", "alice", "mallory")
	h, need, err := (&pdu.Framer{}).Peek(b)
	require.NoError(t, err)
	require.Zero(t, need)
	require.Equal(t, len(b), h.Total())
	require.Equal(t, 2, bytes.Count(b, []byte{0x58, 0}))
	require.Less(t, bytes.Index(b, []byte("alice")), bytes.Index(b, []byte("mallory")))

	one := rqBytes("SOAK", "PACS_A")
	var rq pdu.AssociateRQ
	require.NoError(t, (&pdu.Decoder{}).DecodeAssociateRQ(one, &rq), "the single-identity RQ decodes")
	err = (&pdu.Decoder{}).DecodeAssociateRQ(b, &rq)
	require.Error(t, err)
	require.Contains(t, err.Error(), "user identity sub-item 0x58: repeated sub-item")
}
