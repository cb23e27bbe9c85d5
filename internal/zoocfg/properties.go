package zoocfg

import (
	"strings"
	"unicode/utf16"
)

// property is one key/value pair of a Java properties file, after escapes
// were decoded and both sides trimmed as ZooKeeper's QuorumPeerConfig trims
// them.
type property struct {
	line  int    // natural line on which the logical line starts, from 1
	key   string // decoded and trimmed
	value string // decoded and trimmed
	// escape, if not empty, describes the first backslash escape in the value
	// that Java reads differently from what a user writing a Windows path
	// means (`\z` drops the backslash, `\t` is a tab).
	escape string
}

// readProperties splits data into properties the way java.util.Properties.load
// does (its LineReader and loadConvert), which is how ZooKeeper reads zoo.cfg:
//
//   - lines end at \n, \r or \r\n;
//   - a line whose first non-blank character is # or ! is a comment, and
//     blank lines are skipped;
//   - a line ending in an odd number of backslashes continues on the next
//     one, whose leading blanks are dropped (comment lines never continue);
//   - the key runs to the first unescaped '=', ':' or blank; blanks and one
//     '=' or ':' after it are skipped; the rest is the value;
//   - \t \n \r \f \uXXXX are escapes and a backslash before any other
//     character stands for that character.
//
// Blanks are space, tab and form feed. Unlike Java, which reads the file as
// ISO-8859-1, bytes are kept as they are (so UTF-8 stays UTF-8), and a
// leading UTF-8 byte order mark is skipped.
func readProperties(data string) ([]property, error) {
	data = strings.TrimPrefix(data, "\uFEFF")
	var (
		props   []property
		buf     strings.Builder
		cont    bool // the logical line in buf continues on the next natural line
		start   int  // line number where the logical line in buf started
		lineNum int
	)
	emit := func() error {
		cont = false
		raw := buf.String()
		buf.Reset()
		if raw == "" {
			return nil
		}
		p, err := splitProperty(raw)
		if err != nil {
			return &Error{Line: start, Msg: err.Error()}
		}
		p.line = start
		props = append(props, p)
		return nil
	}
	for len(data) > 0 {
		// Cut one natural line.
		end, next := len(data), len(data)
		if i := strings.IndexAny(data, "\r\n"); i >= 0 {
			end, next = i, i+1
			if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
				next = i + 2
			}
		}
		line := data[:end]
		data = data[next:]
		lineNum++

		line = strings.TrimLeft(line, " \t\f")
		if !cont {
			if line == "" || line[0] == '#' || line[0] == '!' {
				continue
			}
			start = lineNum
		}
		// An odd run of trailing backslashes escapes the line end.
		n := 0
		for n < len(line) && line[len(line)-1-n] == '\\' {
			n++
		}
		if n%2 == 1 {
			buf.WriteString(line[:len(line)-1])
			cont = true
			continue
		}
		buf.WriteString(line)
		if err := emit(); err != nil {
			return nil, err
		}
	}
	if cont {
		// Java drops a backslash before the end of the file.
		if err := emit(); err != nil {
			return nil, err
		}
	}
	return props, nil
}

// isBlank reports whether c separates a key from its value.
func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\f' }

// splitProperty splits one logical line into its decoded key and value.
func splitProperty(raw string) (property, error) {
	keyEnd, valStart := len(raw), len(raw)
	hasSep, escaped := false, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !escaped && (c == '=' || c == ':') {
			keyEnd, valStart, hasSep = i, i+1, true
			break
		}
		if !escaped && isBlank(c) {
			keyEnd, valStart = i, i+1
			break
		}
		escaped = c == '\\' && !escaped
	}
	for valStart < len(raw) {
		c := raw[valStart]
		if !isBlank(c) {
			if hasSep || (c != '=' && c != ':') {
				break
			}
			hasSep = true
		}
		valStart++
	}
	key, _, err := unescape(raw[:keyEnd])
	if err != nil {
		return property{}, err
	}
	value, esc, err := unescape(raw[valStart:])
	if err != nil {
		return property{}, err
	}
	return property{key: trimJava(key), value: trimJava(value), escape: esc}, nil
}

// unescape decodes Java properties escapes. It also returns a description of
// the first escape that a Windows path would trip on, or "".
func unescape(s string) (string, string, error) {
	if !strings.Contains(s, `\`) {
		return s, "", nil
	}
	var (
		b       strings.Builder
		note    string
		pending rune = -1 // a high surrogate from \uD8xx awaiting its pair
	)
	flush := func() {
		if pending >= 0 {
			b.WriteRune(utf16.DecodeRune(pending, 0)) // U+FFFD
			pending = -1
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			flush()
			b.WriteByte(c)
			continue
		}
		i++
		c = s[i]
		switch c {
		case 'u':
			if len(s)-(i+1) < 4 {
				return "", "", errMalformedU
			}
			var r rune
			for _, h := range []byte(s[i+1 : i+5]) {
				d, ok := hexDigit(h)
				if !ok {
					return "", "", errMalformedU
				}
				r = r<<4 | d
			}
			i += 4
			switch {
			case utf16.IsSurrogate(r) && r < 0xDC00:
				flush()
				pending = r
			case utf16.IsSurrogate(r) && pending >= 0:
				b.WriteRune(utf16.DecodeRune(pending, r))
				pending = -1
			default:
				flush()
				b.WriteRune(r)
			}
			continue
		case 't', 'n', 'r', 'f':
			if note == "" {
				note = `"\` + string(c) + `" as a ` + controlName[c]
			}
			c = controlByte[c]
		case '\\', '=', ':', '#', '!', ' ':
			// The escapes people write on purpose.
		default:
			if note == "" && c < 0x80 {
				note = `"\` + string(c) + `" as "` + string(c) + `"`
			}
		}
		flush()
		b.WriteByte(c)
	}
	flush()
	return b.String(), note, nil
}

var (
	controlName = map[byte]string{'t': "tab", 'n': "newline", 'r': "carriage return", 'f': "form feed"}
	controlByte = map[byte]byte{'t': '\t', 'n': '\n', 'r': '\r', 'f': '\f'}
)

type constError string

func (e constError) Error() string { return string(e) }

const errMalformedU = constError(`malformed \uXXXX escape`)

func hexDigit(c byte) (rune, bool) {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0'), true
	case 'a' <= c && c <= 'f':
		return rune(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return rune(c-'A') + 10, true
	}
	return 0, false
}

// trimJava trims as Java's String.trim: every byte up to and including space.
func trimJava(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
}
