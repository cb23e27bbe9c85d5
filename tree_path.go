package zoo

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// validatePath applies ZooKeeper's PathUtils.validatePath rules. Go strings are
// UTF-8 where Java checks UTF-16 code units, so every rune outside the BMP is
// refused too: in Java its surrogate halves fall in the forbidden D800-F8FF range.
func validatePath(p string) error {
	if p == "" {
		return fmt.Errorf("%w: path must not be empty", ErrBadArguments)
	}
	if p[0] != '/' {
		return fmt.Errorf("%w: path must start with /", ErrBadArguments)
	}
	if p == "/" {
		return nil
	}
	if p[len(p)-1] == '/' {
		return fmt.Errorf("%w: path must not end with /", ErrBadArguments)
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("%w: path is not valid UTF-8", ErrBadArguments)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: empty node name", ErrBadArguments)
		case ".", "..":
			return fmt.Errorf("%w: relative paths not allowed", ErrBadArguments)
		}
	}
	for i, r := range p {
		if r == 0 || (r > 0 && r < 0x20) || (r >= 0x7f && r <= 0x9f) ||
			(r >= 0xd800 && r <= 0xf8ff) || (r >= 0xfff0 && r <= 0xffff) || r >= 0x10000 {
			return fmt.Errorf("%w: invalid character %U at %d", ErrBadArguments, r, i)
		}
	}
	return nil
}

// splitPath returns the parent path and the last name of a valid, non-root path.
func splitPath(p string) (parent, name string) {
	i := strings.LastIndexByte(p, '/')
	if i == 0 {
		return "/", p[1:]
	}
	return p[:i], p[i+1:]
}

// isReservedPath reports the nodes ZooKeeper refuses to delete.
func isReservedPath(p string) bool {
	switch p {
	case "/", zookeeperPath, quotaPath, configPath:
		return true
	}
	return false
}

const (
	zookeeperPath = "/zookeeper"
	quotaPath     = "/zookeeper/quota"
	configPath    = "/zookeeper/config"
)
