package demoapp

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ClientSecretFile is where a platform without demo.client_id_secret keeps
// the secret it generated, so that `burnrate load` on the same machine and
// data directory can sign its simulated clients (each its own rate-limit
// bucket) without the user copying a secret around. Only the owner can read
// it (0600), like the rest of the data directory's contents.
func ClientSecretFile(dataDir string) string {
	return filepath.Join(DataDirFor(dataDir), "client_id_secret")
}

// ReadClientSecret returns the secret a platform on dataDir generated, or ""
// when there is none.
func ReadClientSecret(dataDir string) (string, error) {
	b, err := os.ReadFile(ClientSecretFile(dataDir))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("client secret: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// clientSecret is the secret of a platform that was given none: the one in
// dataDir when there is one, else a new random one, written there.
func clientSecret(dataDir string) (string, error) {
	if dataDir == "" {
		return randomSecret(), nil
	}
	s, err := ReadClientSecret(dataDir)
	if err != nil || s != "" {
		return s, err
	}
	s = randomSecret()
	path := ClientSecretFile(dataDir)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return "", fmt.Errorf("client secret: %w", err)
	}
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("client secret: %w", err)
	}
	return s, nil
}

func randomSecret() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
