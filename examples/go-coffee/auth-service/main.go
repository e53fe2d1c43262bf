// Command auth-service signs people in: POST /login checks a user name and
// password and returns an HMAC-SHA256 signed token (an HS256 JWT); GET
// /verify checks a token sent as "Authorization: Bearer <token>".
package main

import "gocoffee.example/go-coffee/internal/platform"

// version is stamped at build time with -ldflags "-X main.version=<v>".
var version = "dev"

func main() {
	platform.Main(platform.Service{Name: "auth-service", Version: version, Routes: routes})
}
