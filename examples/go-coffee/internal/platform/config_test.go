package platform

import (
	"strings"
	"testing"
	"time"
)

// mapEnv turns a map into a getenv function.
func mapEnv(env map[string]string) func(string) string {
	return func(key string) string { return env[key] }
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want Config
	}{
		{"defaults", nil, Config{ListenAddr: DefaultListenAddr}},
		{
			"all set",
			map[string]string{"LISTEN_ADDR": "127.0.0.1:9000", "FAULT_ERROR_RATE": "0.25", "FAULT_LATENCY_MS": "150"},
			Config{ListenAddr: "127.0.0.1:9000", Faults: Faults{ErrorRate: 0.25, Latency: 150 * time.Millisecond}},
		},
		{
			"bounds and spaces",
			map[string]string{"FAULT_ERROR_RATE": " 1 ", "FAULT_LATENCY_MS": "60000"},
			Config{ListenAddr: DefaultListenAddr, Faults: Faults{ErrorRate: 1, Latency: time.Minute}},
		},
		{"zeros", map[string]string{"FAULT_ERROR_RATE": "0", "FAULT_LATENCY_MS": "0"}, Config{ListenAddr: DefaultListenAddr}},
		{"any port, all interfaces", map[string]string{"LISTEN_ADDR": ":0"}, Config{ListenAddr: ":0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadConfig(mapEnv(tt.env))
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if got.ListenAddr != tt.want.ListenAddr || got.Faults.ErrorRate != tt.want.Faults.ErrorRate ||
				got.Faults.Latency != tt.want.Faults.Latency {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLoadConfigRejects(t *testing.T) {
	tests := []struct {
		variable, value, allowed string
	}{
		{"FAULT_ERROR_RATE", "abc", "from 0 to 1"},
		{"FAULT_ERROR_RATE", "-0.1", "from 0 to 1"},
		{"FAULT_ERROR_RATE", "1.5", "from 0 to 1"},
		{"FAULT_ERROR_RATE", "NaN", "from 0 to 1"},
		{"FAULT_ERROR_RATE", "+Inf", "from 0 to 1"},
		{"FAULT_ERROR_RATE", "50%", "from 0 to 1"},
		{"FAULT_LATENCY_MS", "fast", "from 0 to 60000"},
		{"FAULT_LATENCY_MS", "-1", "from 0 to 60000"},
		{"FAULT_LATENCY_MS", "2.5", "from 0 to 60000"},
		{"FAULT_LATENCY_MS", "60001", "from 0 to 60000"},
		{"FAULT_LATENCY_MS", "99999999999999999999", "from 0 to 60000"},
		{"LISTEN_ADDR", "8080", "want host:port"},
		{"LISTEN_ADDR", "127.0.0.1:http", "want host:port"},
		{"LISTEN_ADDR", "127.0.0.1:65536", "want host:port"},
		{"LISTEN_ADDR", "[::1:80", "want host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.variable+"="+tt.value, func(t *testing.T) {
			_, err := LoadConfig(mapEnv(map[string]string{tt.variable: tt.value}))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			for _, want := range []string{tt.variable, `"` + tt.value + `"`, tt.allowed} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q spans several lines", msg)
			}
		})
	}
}

func TestIntEnv(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    int
		wantErr bool
	}{
		{"unset gives the default", "", 7, false},
		{"low bound", "1", 1, false},
		{"high bound", "100", 100, false},
		{"below", "0", 0, true},
		{"above", "101", 0, true},
		{"not a number", "ten", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := IntEnv(mapEnv(map[string]string{"N": tt.value}), "N", 7, 1, 100)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), `N="`+tt.value+`"`) ||
					!strings.Contains(err.Error(), "from 1 to 100") {
					t.Errorf("error = %v, want one naming N, the value and the range", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}
