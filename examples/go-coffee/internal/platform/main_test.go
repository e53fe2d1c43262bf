package platform

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mainEnv makes the test binary run Main instead of the tests, so the tests
// can drive a real process: signals, exit codes and stderr.
const mainEnv = "PLATFORM_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		Main(Service{Name: "test-svc", Version: "9.9.9", Routes: func(mux *http.ServeMux, _ func(string) string) error {
			mux.Handle("/hello", Methods{http.MethodGet: func(w http.ResponseWriter, _ *http.Request) {
				WriteJSON(w, http.StatusOK, map[string]string{"hello": "world"})
			}})
			return nil
		}})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startMain starts this test binary as a service process with extra env.
func startMain(t *testing.T, env ...string) (*exec.Cmd, io.ReadCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), append([]string{mainEnv + "=1"}, env...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Only if a test failed before the process ended: kill it by PID.
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, stderr
}

// waitExit waits for cmd to end, with a deadline.
func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return exitErr.ExitCode()
		}
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		return 0
	case <-time.After(2 * ShutdownTimeout):
		t.Fatal("the process did not exit")
		return -1
	}
}

var listeningRE = regexp.MustCompile(`msg=listening .*addr=(127\.0\.0\.1:\d+)`)

func TestMainServesAndStopsOnSIGTERM(t *testing.T) {
	cmd, stderr := startMain(t, "LISTEN_ADDR=127.0.0.1:0")

	// The process logs its address once it listens; the rest of stderr is
	// kept to check the shutdown log.
	addrc := make(chan string, 1)
	var rest bytes.Buffer
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		scanner := bufio.NewScanner(stderr)
		for scanner.Scan() {
			if m := listeningRE.FindStringSubmatch(scanner.Text()); m != nil {
				addrc <- m[1]
			}
			rest.WriteString(scanner.Text() + "\n")
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(10 * time.Second):
		t.Fatal("the process did not log its listening address")
	}

	code, body := get(t, "http://"+addr+"/health")
	if code != http.StatusOK || body != `{"status":"ok","service":"test-svc","version":"9.9.9"}`+"\n" {
		t.Errorf("/health = %d %q", code, body)
	}
	if code, body := get(t, "http://"+addr+"/hello"); code != http.StatusOK || !strings.Contains(body, "world") {
		t.Errorf("/hello = %d %q", code, body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	<-logDone
	if !strings.Contains(rest.String(), "msg=stopped") {
		t.Errorf("no stop log line in:\n%s", rest.String())
	}
}

func TestMainRejectsBadKnobWithOneLine(t *testing.T) {
	tests := []struct {
		env  string
		want string
	}{
		{"FAULT_ERROR_RATE=2", `test-svc: FAULT_ERROR_RATE="2" is not allowed: want a fraction from 0 to 1`},
		{"FAULT_LATENCY_MS=slow", `test-svc: FAULT_LATENCY_MS="slow" is not allowed: want whole milliseconds`},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			cmd, stderr := startMain(t, tt.env, "LISTEN_ADDR=127.0.0.1:0")
			out, err := io.ReadAll(stderr)
			if err != nil {
				t.Fatal(err)
			}
			if code := waitExit(t, cmd); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], tt.want) {
				t.Errorf("stderr = %q, want one line starting with %q", out, tt.want)
			}
		})
	}
}
