module gocoffee.example/go-coffee

go 1.23
