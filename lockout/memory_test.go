package lockout_test

import (
	"testing"
	"time"

	"github.com/chatsdk/compliance/lockout"
	"github.com/chatsdk/compliance/lockout/lockouttest"
)

func TestMemoryStoreConformance(t *testing.T) {
	lockouttest.Run(t, func(t *testing.T) lockouttest.Harness {
		clock := lockouttest.NewClock()
		return lockouttest.Harness{
			Store:   lockout.NewMemoryStore(clock.Now),
			Advance: func(_ *testing.T, d time.Duration) { clock.Advance(d) },
		}
	})
}
