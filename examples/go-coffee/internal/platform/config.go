package platform

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// DefaultListenAddr is used when LISTEN_ADDR is unset. Loopback only: the
// platform runs containers with host networking and always passes its own port.
const DefaultListenAddr = "127.0.0.1:8080"

// MaxFaultLatency bounds FAULT_LATENCY_MS so a typo cannot hang requests for hours.
const MaxFaultLatency = time.Minute

// Config is what every service reads from its environment.
type Config struct {
	ListenAddr string
	Faults     Faults
}

// LoadConfig reads LISTEN_ADDR, FAULT_ERROR_RATE and FAULT_LATENCY_MS through
// getenv (os.Getenv in production, a map in tests). Unset means the default;
// a set but invalid value is an error that names the variable, the value and
// what is allowed.
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := Config{ListenAddr: DefaultListenAddr}
	if addr := strings.TrimSpace(getenv("LISTEN_ADDR")); addr != "" {
		// Checked here, before the service reads its own settings, so a typo
		// is the only line printed; a port in use still fails at listen.
		_, port, err := net.SplitHostPort(addr)
		if n, convErr := strconv.Atoi(port); err != nil || convErr != nil || n < 0 || n > 65535 {
			return Config{}, fmt.Errorf(
				"LISTEN_ADDR=%q is not allowed: want host:port, like %s", addr, DefaultListenAddr)
		}
		cfg.ListenAddr = addr
	}

	if raw := strings.TrimSpace(getenv("FAULT_ERROR_RATE")); raw != "" {
		rate, err := strconv.ParseFloat(raw, 64)
		if err != nil || math.IsNaN(rate) || rate < 0 || rate > 1 {
			return Config{}, fmt.Errorf(
				"FAULT_ERROR_RATE=%q is not allowed: want a fraction from 0 to 1 "+
					"(0.1 makes one business request in ten answer 500)", raw)
		}
		cfg.Faults.ErrorRate = rate
	}

	if raw := strings.TrimSpace(getenv("FAULT_LATENCY_MS")); raw != "" {
		ms, err := strconv.Atoi(raw)
		if err != nil || ms < 0 || time.Duration(ms)*time.Millisecond > MaxFaultLatency {
			return Config{}, fmt.Errorf(
				"FAULT_LATENCY_MS=%q is not allowed: want whole milliseconds from 0 to %d, like 250",
				raw, MaxFaultLatency.Milliseconds())
		}
		cfg.Faults.Latency = time.Duration(ms) * time.Millisecond
	}
	return cfg, nil
}

// IntEnv reads the whole number in the variable name through getenv: def
// when unset, an error naming the variable, the value and the range when the
// value is not a whole number from lo to hi.
func IntEnv(getenv func(string) string, name string, def, lo, hi int) (int, error) {
	raw := strings.TrimSpace(getenv(name))
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%q is not allowed: want a whole number from %d to %d", name, raw, lo, hi)
	}
	return n, nil
}
