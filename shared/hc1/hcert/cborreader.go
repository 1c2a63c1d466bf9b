package hcert

import (
	"fmt"
	"unicode/utf8"
)

// cborReader walks untrusted CBOR item by item, bounds-checking every read.
type cborReader struct {
	data []byte
	pos  int
}

func (c *cborReader) head() (major byte, arg uint64, indef bool, err error) {
	major, arg, n, indef, err := readHead(c.data[c.pos:])
	if err != nil {
		return 0, 0, false, fmt.Errorf("offset %d: %w", c.pos, err)
	}
	c.pos += n
	return major, arg, indef, nil
}

func (c *cborReader) atBreak() bool {
	if c.pos < len(c.data) && c.data[c.pos] == 0xff {
		c.pos++
		return true
	}
	return false
}

// take returns the next n bytes.
func (c *cborReader) take(n uint64) ([]byte, error) {
	if n > uint64(len(c.data)-c.pos) {
		return nil, fmt.Errorf("offset %d: %d-byte string runs past the end", c.pos, n)
	}
	b := c.data[c.pos : c.pos+int(n)]
	c.pos += int(n)
	return b, nil
}

// textKey reads a definite-length text string used as a map key.
func (c *cborReader) textKey() ([]byte, error) {
	at := c.pos
	major, n, indef, err := c.head()
	if err != nil {
		return nil, err
	}
	if major != majorText || indef {
		return nil, fmt.Errorf("offset %d: map key is not a definite-length text string", at)
	}
	k, err := c.take(n)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(k) {
		return nil, fmt.Errorf("offset %d: map key is not valid UTF-8", at)
	}
	return k, nil
}

// skip advances past n data items.
func (c *cborReader) skip(n int) error {
	for ; n > 0; n-- {
		if err := c.skipItem(0); err != nil {
			return err
		}
	}
	return nil
}

func (c *cborReader) skipItem(depth int) error {
	if depth > maxNesting {
		return fmt.Errorf("offset %d: nesting deeper than %d", c.pos, maxNesting)
	}
	at := c.pos
	major, arg, indef, err := c.head()
	if err != nil {
		return err
	}
	items := arg
	switch major {
	case majorBytes, majorText:
		if !indef {
			_, err = c.take(arg)
			return err
		}
		for !c.atBreak() {
			if m, cn, ci, err := c.head(); err != nil || m != major || ci {
				return fmt.Errorf("offset %d: bad string chunk", at)
			} else if _, err := c.take(cn); err != nil {
				return err
			}
		}
		return nil
	case majorMap:
		items = 2 * arg
		fallthrough
	case majorArray:
		for i := uint64(0); indef || i < items; i++ {
			if indef && c.atBreak() {
				return nil
			}
			if i >= 2*maxElements {
				return fmt.Errorf("offset %d: container too large", at)
			}
			if err := c.skipItem(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case majorTag:
		return c.skipItem(depth + 1)
	case majorSimple:
		if indef {
			return fmt.Errorf("offset %d: unexpected break", at)
		}
	}
	return nil
}
