package fieldcrypt_test

import (
	"testing"

	"github.com/chatsdk/compliance/fieldcrypt"
	"github.com/chatsdk/compliance/fieldcrypt/fieldcrypttest"
)

func TestMemoryColumnConformance(t *testing.T) {
	fieldcrypttest.RunRows(t, func(t *testing.T) fieldcrypttest.Table {
		c := fieldcrypt.NewMemoryColumn()
		return fieldcrypttest.Table{
			Rows:  c,
			Plain: c,
			Put: func(t *testing.T, s fieldcrypt.Scope, id string, ct, pt []byte) {
				c.Put(s, id, ct)
				c.PutPlain(s, id, pt)
			},
			Get: func(t *testing.T, s fieldcrypt.Scope, id string) ([]byte, []byte) { return c.Get(s, id) },
		}
	})
}
