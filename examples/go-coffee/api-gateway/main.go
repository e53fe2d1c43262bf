// Command api-gateway is the public face of Go Coffee: it serves the menu
// itself and forwards order requests to the producer and the consumer.
package main

import "gocoffee.example/go-coffee/internal/platform"

// version is stamped at build time with -ldflags "-X main.version=<v>".
var version = "dev"

func main() {
	platform.Main(platform.Service{Name: "api-gateway", Version: version, Routes: routes})
}
