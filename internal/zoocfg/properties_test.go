package zoocfg

import (
	"reflect"
	"testing"
)

func TestReadProperties(t *testing.T) {
	type p = property
	tests := []struct {
		name string
		in   string
		want []property
	}{
		{"equals", "a=b\n", []p{{line: 1, key: "a", value: "b"}}},
		{"colon", "a:b", []p{{line: 1, key: "a", value: "b"}}},
		{"blank separator", "a b", []p{{line: 1, key: "a", value: "b"}}},
		{"blanks around separator", " \t a \t = \f b  \t", []p{{line: 1, key: "a", value: "b"}}},
		{"blank then colon", "a  :  b", []p{{line: 1, key: "a", value: "b"}}},
		{"second separator is value", "a==b", []p{{line: 1, key: "a", value: "=b"}}},
		{"blank then two separators", "a = :b", []p{{line: 1, key: "a", value: ":b"}}},
		{"separator in value", "server.1=h:1:2;3", []p{{line: 1, key: "server.1", value: "h:1:2;3"}}},
		{"key only", "...\n", []p{{line: 1, key: "...", value: ""}}},
		{"empty key", "=x", []p{{line: 1, key: "", value: "x"}}},
		{"empty value", "a=", []p{{line: 1, key: "a", value: ""}}},
		{"comments and blanks", "# x\n! y\n\n   \n  # z\na=1\n", []p{{line: 6, key: "a", value: "1"}}},
		{"hash inside value", "a=b#c", []p{{line: 1, key: "a", value: "b#c"}}},
		{"line endings", "a=1\r\nb=2\rc=3\nd=4", []p{
			{line: 1, key: "a", value: "1"}, {line: 2, key: "b", value: "2"},
			{line: 3, key: "c", value: "3"}, {line: 4, key: "d", value: "4"}}},
		{"continuation", "a=1\\\n   2\\\n\t3\nb=4", []p{
			{line: 1, key: "a", value: "123"}, {line: 4, key: "b", value: "4"}}},
		{"continuation keeps blanks before backslash", "a=1 \\\n 2", []p{{line: 1, key: "a", value: "1 2"}}},
		{"continuation in key", "ab\\\n  cd=1", []p{{line: 1, key: "abcd", value: "1"}}},
		{"continued line starting with hash", "a=1\\\n#2", []p{{line: 1, key: "a", value: "1#2"}}},
		{"continuation then blank line ends it", "a=1\\\n\nb=2", []p{
			{line: 1, key: "a", value: "1"}, {line: 3, key: "b", value: "2"}}},
		{"comment never continues", "# a \\\nb=2", []p{{line: 2, key: "b", value: "2"}}},
		{"even backslashes do not continue", "a=x\\\\\nb=2", []p{
			{line: 1, key: "a", value: `x\`}, {line: 2, key: "b", value: "2"}}},
		{"backslash at end of file", "a=x\\", []p{{line: 1, key: "a", value: "x"}}},
		{"crlf continuation", "a=1\\\r\n 2\r\n", []p{{line: 1, key: "a", value: "12"}}},
		{"escaped separators in key", `a\=b\:c\ d=e`, []p{{line: 1, key: "a=b:c d", value: "e"}}},
		{"unicode escape", `a=\u0041\u00e9\uD83D\uDE00`, []p{{line: 1, key: "a", value: "Aé😀"}}},
		{"utf-8 kept", "dataDir=/données", []p{{line: 1, key: "dataDir", value: "/données"}}},
		{"byte order mark", "\uFEFFa=1", []p{{line: 1, key: "a", value: "1"}}},
		{"escaped trailing space is trimmed", `a=b\ `, []p{{line: 1, key: "a", value: "b"}}},
		{"windows path", `d=C:\zk\data`, []p{{line: 1, key: "d", value: "C:zkdata", escape: `"\z" as "z"`}}},
		{"tab escape", `d=C:\tmp`, []p{{line: 1, key: "d", value: "C:\tmp", escape: `"\t" as a tab`}}},
		{"double backslash", `d=C:\\zk`, []p{{line: 1, key: "d", value: `C:\zk`}}},
		{"only a continuation", "\\\n\na=1", []p{{line: 3, key: "a", value: "1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readProperties(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("readProperties(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestReadPropertiesMalformedUnicode(t *testing.T) {
	for _, in := range []string{`a=\u12`, `a=\u12zz`, `\uxyzw=1`, "a=1\nb=\\u"} {
		_, err := readProperties(in)
		e, ok := err.(*Error)
		if !ok || e.Msg != `malformed \uXXXX escape` {
			t.Errorf("readProperties(%q) = %v, want malformed escape", in, err)
		}
	}
}
