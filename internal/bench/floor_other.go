//go:build !linux

package bench

import (
	"context"
	"errors"
)

func (r *runner) runFloor(context.Context) (*Result, error) {
	return nil, errors.New("bench: the floor scenario needs Linux")
}
