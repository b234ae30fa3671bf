//go:build wasip1

package main

import "strconv"

// proxySetBufferBytes is the ABI call itself: the SDK only offers append
// (start=MaxInt32), prepend (0,0) and replace-all (0,MaxInt32), but the
// filter must replace just the first 26 or 42 bytes of the A-ASSOCIATE-RQ.
//
//go:wasmimport env proxy_set_buffer_bytes
func proxySetBufferBytes(bufferType uint32, start, size int32, data *byte, dataLen int32) uint32

// bufferTypeDownstreamData is proxy-wasm buffer type DOWNSTREAM_DATA.
const bufferTypeDownstreamData = 2

func setDownstreamPrefix(_ uint32, n int, data []byte) error {
	if len(data) == 0 {
		return errEmptyPrefix
	}
	if st := proxySetBufferBytes(bufferTypeDownstreamData, 0, int32(n), &data[0], int32(len(data))); st != 0 {
		return statusError("proxy_set_buffer_bytes(DOWNSTREAM_DATA, 0, "+strconv.Itoa(n)+")", st)
	}
	return nil
}
