//go:build go1.23

package vmcontainer

import (
	"errors"
	"io"
	"iter"
)

// Lines yields each line with a nil error, and at the end an error if the
// stream failed (nothing at a normal end):
//
//	for line, err := range stream.Lines() { ... }
func (s *LogStream) Lines() iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		for {
			line, err := s.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield("", err)
				return
			}
			if !yield(line, nil) {
				return
			}
		}
	}
}
