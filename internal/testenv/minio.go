package testenv

import (
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// MinIO is a MinIO server standing in for AWS: S3 and STS AssumeRole on one
// port, with a user whose access key the tests use and a bucket.
type MinIO struct {
	Endpoint     string // http://127.0.0.1:PORT
	Region       string
	RootUser     string
	RootPassword string
	AccessKey    string // a user with the readwrite policy
	SecretKey    string
	Bucket       string
	Process      *Process
}

// StartMinIO starts MinIO (MINIO_BIN and MC_BIN, from `make tools`).
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	minioBin := binary(t, "MINIO_BIN", "minio", "tools")
	mcBin := binary(t, "MC_BIN", "mc", "tools")
	dir := TempDir(t, "minio-")
	port := FreePort(t)
	m := &MinIO{
		Endpoint:     "http://127.0.0.1:" + strconv.Itoa(port),
		Region:       "us-east-1",
		RootUser:     "rootadmin",
		RootPassword: "root-" + randomHex(10),
		AccessKey:    "vaultuser",
		SecretKey:    "user-" + randomHex(14),
		Bucket:       "testbucket",
	}
	env := []string{
		"HOME=" + dir, "MINIO_ROOT_USER=" + m.RootUser, "MINIO_ROOT_PASSWORD=" + m.RootPassword,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_REGION=" + m.Region,
	}
	m.Process = StartProcess(t, "minio", filepath.Join(dir, "minio.log"), env, minioBin,
		"server", "--quiet", "--address", "127.0.0.1:"+strconv.Itoa(port),
		"--certs-dir", filepath.Join(dir, "certs"), filepath.Join(dir, "data"))
	WaitFor(t, "minio", 2*time.Minute, m.Process, func() error {
		resp, err := http.Get(m.Endpoint + "/minio/health/live")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errNotReady
		}
		return nil
	})

	mcEnv := []string{"HOME=" + dir, "MC_CONFIG_DIR=" + filepath.Join(dir, "mc")}
	run(t, mcEnv, mcBin, "--quiet", "alias", "set", "local", m.Endpoint, m.RootUser, m.RootPassword)
	run(t, mcEnv, mcBin, "--quiet", "admin", "user", "add", "local", m.AccessKey, m.SecretKey)
	run(t, mcEnv, mcBin, "--quiet", "admin", "policy", "attach", "local", "readwrite", "--user", m.AccessKey)
	run(t, mcEnv, mcBin, "--quiet", "mb", "local/"+m.Bucket)
	return m
}
