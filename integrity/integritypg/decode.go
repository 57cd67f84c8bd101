package integritypg

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"time"
	"unsafe"

	"github.com/chatsdk/compliance/internal/canon"
)

// Postgres type OIDs the verifier decodes in binary format.
const (
	oidBool        = 16
	oidBytea       = 17
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidUUID        = 2950
)

// pgEpochMicros is 2000-01-01 UTC, the epoch of Postgres timestamps, in
// Unix microseconds.
const pgEpochMicros = 946684800000000

// decoder turns one column's binary value into a canonical field.
type decoder func(raw []byte) (canon.Value, error)

// decoderFor returns the decoder for a column of type oid declared as
// kind, or an error when the two do not fit.
func decoderFor(oid uint32, kind canon.Kind) (decoder, error) {
	switch {
	case kind == canon.KindString && (oid == oidText || oid == oidVarchar || oid == oidBPChar || oid == oidName):
		return decodeText, nil
	case kind == canon.KindString && oid == oidUUID:
		return decodeUUID, nil
	case kind == canon.KindBytes && oid == oidBytea:
		return decodeBytes, nil
	case kind == canon.KindInt && (oid == oidInt2 || oid == oidInt4 || oid == oidInt8):
		return decodeInt, nil
	case kind == canon.KindBool && oid == oidBool:
		return decodeBool, nil
	case kind == canon.KindTime && (oid == oidTimestamptz || oid == oidTimestamp):
		return decodeTime, nil
	}
	return nil, fmt.Errorf("%w: column of type oid %d cannot hold a %s field", ErrSchema, oid, kind)
}

func decodeText(raw []byte) (canon.Value, error) { return canon.String(string(raw)), nil }

func decodeBytes(raw []byte) (canon.Value, error) {
	return canon.Bytes(append([]byte{}, raw...)), nil
}

// decodeUUID spells a uuid the way Postgres and most Go libraries print
// it: lower-case hex in 8-4-4-4-12 groups.
func decodeUUID(raw []byte) (canon.Value, error) {
	if len(raw) != 16 {
		return canon.Value{}, fmt.Errorf("%w: uuid of %d bytes", ErrSchema, len(raw))
	}
	var b [36]byte
	hex.Encode(b[0:8], raw[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], raw[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], raw[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], raw[8:10])
	b[23] = '-'
	hex.Encode(b[24:], raw[10:])
	return canon.String(string(b[:])), nil
}

func decodeInt(raw []byte) (canon.Value, error) {
	switch len(raw) {
	case 2:
		return canon.Int(int64(int16(binary.BigEndian.Uint16(raw)))), nil
	case 4:
		return canon.Int(int64(int32(binary.BigEndian.Uint32(raw)))), nil
	case 8:
		return canon.Int(int64(binary.BigEndian.Uint64(raw))), nil
	}
	return canon.Value{}, fmt.Errorf("%w: integer of %d bytes", ErrSchema, len(raw))
}

func decodeBool(raw []byte) (canon.Value, error) {
	if len(raw) != 1 || raw[0] > 1 {
		return canon.Value{}, fmt.Errorf("%w: malformed bool", ErrSchema)
	}
	return canon.Bool(raw[0] == 1), nil
}

// decodeTime reads a timestamp's binary form, microseconds since
// 2000-01-01 UTC: no time zone or date style is involved. A timestamp
// without time zone is read as UTC.
func decodeTime(raw []byte) (canon.Value, error) {
	if len(raw) != 8 {
		return canon.Value{}, fmt.Errorf("%w: timestamp of %d bytes", ErrSchema, len(raw))
	}
	us := int64(binary.BigEndian.Uint64(raw))
	if us == math.MaxInt64 || us == math.MinInt64 || us > math.MaxInt64-pgEpochMicros {
		// TODO: ±infinity has no time.Time; it encodes as an impossible
		// value, so a sealed row can never hold it and verification fails.
		return canon.Int(us), nil
	}
	return canon.Time(time.UnixMicro(us + pgEpochMicros)), nil
}

// appender appends one column's binary value to dst as the canonical
// field its decoder would give, without making the Value: the streaming
// verifier writes every row's message straight into a batch buffer.
type appender func(dst, raw []byte) ([]byte, error)

// appenderFor returns the appender for a column of type oid declared as
// kind. It agrees with decoderFor byte for byte (TestAppendersAgree).
func appenderFor(oid uint32, kind canon.Kind) (appender, error) {
	dec, err := decoderFor(oid, kind)
	if err != nil {
		return nil, err
	}
	switch {
	case kind == canon.KindString && oid != oidUUID:
		return appendText, nil
	case kind == canon.KindBytes:
		return appendBytea, nil
	}
	return func(dst, raw []byte) ([]byte, error) {
		v, err := dec(raw)
		if err != nil {
			return dst, err
		}
		return canon.AppendValue(dst, v), nil
	}, nil
}

func appendText(dst, raw []byte) ([]byte, error) {
	// canon.AppendString only copies its argument, so a string that
	// aliases raw for the length of the call is safe and saves a copy.
	return canon.AppendString(dst, unsafe.String(unsafe.SliceData(raw), len(raw))), nil
}

func appendBytea(dst, raw []byte) ([]byte, error) {
	return canon.AppendBytes(dst, raw), nil
}
