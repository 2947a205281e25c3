package generate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// maxSSELine bounds one line of an event stream; a longer line is an error
// rather than unbounded memory.
const maxSSELine = 1 << 20

// maxSSEEvent bounds the data of one event (several data lines together).
const maxSSEEvent = 4 << 20

// errSSETooLong reports a line or event over the limits.
var errSSETooLong = errors.New("event stream line or event too long")

// sseReader reads server-sent events (the text/event-stream format) and
// returns the data of each event. Comments, event names, ids and retry
// fields are skipped; several data lines are joined with "\n"; lines may end
// in LF, CRLF or CR. It never panics on any input.
type sseReader struct {
	r   *bufio.Reader
	buf bytes.Buffer
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// readLine returns one line without its terminator; io.EOF when the stream
// ended with no more text.
func (s *sseReader) readLine() ([]byte, error) {
	var line []byte
	for {
		b, err := s.r.ReadByte()
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				return line, nil
			}
			return nil, err
		}
		switch b {
		case '\n':
			return line, nil
		case '\r':
			if next, err := s.r.Peek(1); err == nil && next[0] == '\n' {
				_, _ = s.r.ReadByte()
			}
			return line, nil
		}
		if len(line) >= maxSSELine {
			return nil, errSSETooLong
		}
		line = append(line, b)
	}
}

// Next returns the data of the next event that has data. At the end of the
// stream it returns io.EOF; an event cut off by the end of the stream is
// still returned, as browsers do not, because OpenAI-compatible servers
// sometimes omit the last blank line.
func (s *sseReader) Next() ([]byte, error) {
	s.buf.Reset()
	has := false
	for {
		line, err := s.readLine()
		if err != nil {
			if err == io.EOF && has {
				return s.buf.Bytes(), nil
			}
			return nil, err
		}
		if len(line) == 0 {
			if has {
				return s.buf.Bytes(), nil
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, found := bytes.Cut(line, []byte{':'})
		if found && len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		if string(field) != "data" {
			continue
		}
		if has {
			s.buf.WriteByte('\n')
		}
		if s.buf.Len()+len(value) > maxSSEEvent {
			return nil, fmt.Errorf("%w: event over %d bytes", errSSETooLong, maxSSEEvent)
		}
		s.buf.Write(value)
		has = true
	}
}
