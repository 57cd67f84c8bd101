package fieldcrypt

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"

	"github.com/chatsdk/compliance/internal/canon"
)

// Index names a blind index: the column it indexes and its length.
type Index struct {
	// Tenant, Table and Column name the indexed field; the key is the
	// tenant's, and the table and column are bound into every value, so
	// equal values in two columns have unrelated indexes. Required.
	Tenant string
	Table  string
	Column string
	// Bits is the index length, 8 to 256; 0 means the Keyring's
	// BlindIndexBits. It must not change once values are indexed.
	Bits int
}

// prfSet is the blind index keyset's primitive: every enabled PRF, primary
// first.
type prfSet struct {
	primary uint32
	ids     []uint32
	prfs    map[uint32]prf.PRF
}

func indexTemplate() *tinkpb.KeyTemplate { return prf.HMACSHA256PRFKeyTemplate() }

func newPRFSet(h *keyset.Handle) (prfSet, error) {
	set, err := prf.NewPRFSet(h)
	if err != nil {
		return prfSet{}, err
	}
	s := prfSet{primary: set.PrimaryID, prfs: set.PRFs}
	for id := range set.PRFs {
		if id != set.PrimaryID {
			s.ids = append(s.ids, id)
		}
	}
	sort.Slice(s.ids, func(i, j int) bool { return s.ids[i] < s.ids[j] })
	s.ids = append([]uint32{set.PrimaryID}, s.ids...)
	return s, nil
}

// NormalizeDefault is the default normalisation of a blind-indexed value:
// surrounding space removed, inner runs of space made one space, and lower
// case, so "  Jane  DOE " and "jane doe" index alike.
func NormalizeDefault(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// BlindIndex returns the index of value under the tenant's primary index
// key, to store beside the encrypted field. Equal values (after Normalize)
// of one column have equal indexes, so the column can be searched for
// equality without being decrypted.
//
// The index leaks by design: whoever reads the table learns which rows
// share a value and how often each value occurs, and can confirm a guessed
// value only with the key. Fewer bits leak less, because unrelated values
// collide and a lookup returns false positives the caller must filter by
// decrypting; more bits make lookups exact. With n distinct values, about
// 2·log2(n) bits make collisions rare; the default 64 suits columns with up
// to a few million distinct values. Index only low-risk equality fields
// (an email, an MRN), never free text.
func (k *Keyring) BlindIndex(ctx context.Context, ix Index, value string) ([]byte, error) {
	all, err := k.indexes(ctx, ix, value, true)
	if err != nil {
		return nil, err
	}
	return all[0], nil
}

// BlindIndexes returns the index of value under every enabled index key of
// the tenant, primary first. During an index key rotation, a lookup must
// match any of them (WHERE idx = ANY($1)) until every row is re-indexed.
func (k *Keyring) BlindIndexes(ctx context.Context, ix Index, value string) ([][]byte, error) {
	return k.indexes(ctx, ix, value, false)
}

func (k *Keyring) indexes(ctx context.Context, ix Index, value string, primaryOnly bool) ([][]byte, error) {
	switch {
	case ix.Tenant == "":
		return nil, fmt.Errorf("%w: empty tenant", ErrInvalidLocation)
	case ix.Table == "" || ix.Column == "":
		return nil, fmt.Errorf("%w: empty table or column", ErrInvalidLocation)
	}
	bits := ix.Bits
	if bits == 0 {
		bits = k.indexBits
	}
	if bits < 8 || bits > 256 {
		return nil, fmt.Errorf("%w: index bits %d outside 8..256", ErrConfig, bits)
	}
	ks, err := k.keyset(ctx, Scope{Tenant: ix.Tenant}, PurposeBlindIndex, true)
	if err != nil {
		return nil, err
	}

	input := canon.Encode(indexDomain, canon.String(ix.Tenant), canon.String(ix.Table), canon.String(ix.Column), canon.String(k.normalize(value)))
	ids := ks.prfs.ids
	if primaryOnly {
		ids = ids[:1]
	}
	n := (bits + 7) / 8
	out := make([][]byte, 0, len(ids))
	for _, id := range ids {
		b, err := ks.prfs.prfs[id].ComputePRF(input, uint32(n))
		if err != nil {
			return nil, fmt.Errorf("fieldcrypt: blind index: %w", err)
		}
		if rem := bits % 8; rem != 0 {
			b[n-1] &= byte(0xff << (8 - rem))
		}
		out = append(out, b)
	}
	return out, nil
}
