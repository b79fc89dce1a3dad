// Go peer for bench/compare, on gorilla/websocket: /echo sends every message
// back, /broadcast sends every message to all the other /broadcast
// connections (one writer goroutine per connection, PreparedMessage so the
// frame is built once). Built offline from Debian's sources:
//   GO111MODULE=off GOPATH=/usr/share/gocode go build -o bench_go_server server.go
// Usage: bench_go_server -port N  (127.0.0.1, default 8092)
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	CheckOrigin:     func(r *http.Request) bool { return true },
}

func echo(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	c.SetReadLimit(1 << 24)
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, msg); err != nil {
			return
		}
	}
}

type member struct {
	c    *websocket.Conn
	send chan *websocket.PreparedMessage
}

var (
	mu      sync.Mutex
	members = map[*member]struct{}{}
)

func broadcast(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	m := &member{c: c, send: make(chan *websocket.PreparedMessage, 1024)}
	mu.Lock()
	members[m] = struct{}{}
	mu.Unlock()
	go func() {
		for pm := range m.send {
			if err := c.WritePreparedMessage(pm); err != nil {
				c.Close()
			}
		}
	}()
	defer func() {
		mu.Lock()
		delete(members, m)
		mu.Unlock()
		close(m.send)
		c.Close()
	}()
	c.SetReadLimit(1 << 24)
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		pm, err := websocket.NewPreparedMessage(mt, msg)
		if err != nil {
			return
		}
		mu.Lock()
		for o := range members {
			if o != m {
				o.send <- pm
			}
		}
		mu.Unlock()
	}
}

func main() {
	port := flag.Int("port", 8092, "TCP port")
	flag.Parse()
	http.HandleFunc("/echo", echo)
	http.HandleFunc("/broadcast", broadcast)
	log.Fatal(http.ListenAndServe(fmt.Sprintf("127.0.0.1:%d", *port), nil))
}
