// tlogcheck: an independent reader of a log that `milestones publish` wrote,
// with Go's golang.org/x/mod/sumdb/note and sumdb/tlog only (Debian's
// golang-golang-x-mod-dev; run with GO111MODULE=off GOPATH=/usr/share/gocode).
//
//	go run tlogcheck/main.go DIR LOG.vkey
//
// Opens DIR/checkpoint with note.Open and the verifier key, reads the tree's
// hashes through tlog.TileHashReader from DIR/tile/<L>/<N>[.p/<W>] (tlog-tiles
// paths: Go's tile paths without the height), checks tlog.TreeHash against the
// checkpoint's root, then proves and checks the inclusion of every record of
// the entry bundles (tlog.ProveRecord, tlog.CheckRecord). Prints "ok: N records".
package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type tiles struct{ dir string }

func (t tiles) Height() int { return 8 }

func (t tiles) path(tile tlog.Tile) string {
	p := tile.Path() // tile/8/L/N[.p/W]
	return filepath.Join(t.dir, "tile", strings.TrimPrefix(p, "tile/8/"))
}

func (t tiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, tile := range ts {
		b, err := os.ReadFile(t.path(tile))
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func (t tiles) SaveTiles([]tlog.Tile, [][]byte) {}

func fail(f string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "tlogcheck: "+f+"\n", a...)
	os.Exit(1)
}

func main() {
	dir, vkeyFile := os.Args[1], os.Args[2]
	vkey, err := os.ReadFile(vkeyFile)
	if err != nil {
		fail("%v", err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		fail("verifier key: %v", err)
	}
	msg, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		fail("%v", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		fail("checkpoint: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("size: %v", err)
	}
	rootBytes, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(rootBytes) != 32 {
		fail("root line %q", lines[2])
	}
	var root tlog.Hash
	copy(root[:], rootBytes)
	tree := tlog.Tree{N: size, Hash: root}
	hr := tlog.TileHashReader(tree, tiles{dir})
	th, err := tlog.TreeHash(size, hr)
	if err != nil {
		fail("tree hash: %v", err)
	}
	if th != root {
		fail("the tiles give root %v, the checkpoint %v", th, root)
	}
	// Every record, from the entry bundles.
	var records [][]byte
	for k := int64(0); k*256 < size; k++ {
		w := size - k*256
		if w > 256 {
			w = 256
		}
		t := tlog.Tile{H: 8, L: 0, N: k, W: int(w)}
		p := filepath.Join(dir, "tile", "entries", strings.TrimPrefix(t.Path(), "tile/8/0/"))
		b, err := os.ReadFile(p)
		if err != nil {
			fail("%v", err)
		}
		for len(b) > 0 {
			if len(b) < 2 {
				fail("%s: truncated", p)
			}
			l := int(b[0])<<8 | int(b[1])
			if len(b) < 2+l {
				fail("%s: truncated entry", p)
			}
			records = append(records, b[2:2+l])
			b = b[2+l:]
		}
	}
	if int64(len(records)) != size {
		fail("the bundles hold %d records, the checkpoint commits to %d", len(records), size)
	}
	for i, rec := range records {
		if bytes.IndexByte(rec, '\n') >= 0 {
			fail("record %d holds a LF", i+1)
		}
		p, err := tlog.ProveRecord(size, int64(i), hr)
		if err != nil {
			fail("prove record %d: %v", i+1, err)
		}
		if err := tlog.CheckRecord(p, size, root, int64(i), tlog.RecordHash(rec)); err != nil {
			fail("record %d: %v", i+1, err)
		}
	}
	fmt.Printf("ok: %d records, root %s, signed by %s\n", size, lines[2], n.Sigs[0].Name)
}
