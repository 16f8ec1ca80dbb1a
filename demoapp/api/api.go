// Package api is the demo platform's application tier: a small shop with a
// product catalogue, carts and orders, reading and writing through the cache
// tier. It is stateless, so the edge can balance over any number of
// replicas.
//
//	GET  /api/products/{id}                 a product
//	GET  /api/carts/{user}                  a user's cart (empty when none)
//	PUT  /api/carts/{user}/items/{product}  set a quantity: {"qty": 2} (idempotent)
//	POST /api/orders                        place an order from a cart: {"user": "u1"}
//	GET  /api/orders/{id}                   an order
//
// Placing an order is atomic: the order and the emptied cart are written
// in one batch to one shard (the order's key carries the cart's key as its
// hash tag), so a failure leaves both as they were, never an order with its
// cart still full or a 502 for an order that exists. With an
// Idempotency-Key header the order's ID is derived from the user and the
// key: a retry of the same request finds the order placed and answers it
// again (200, Idempotent-Replayed: true) instead of placing a second one.
package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/burnrate/burnrate/demoapp/faults"
	"github.com/burnrate/burnrate/demoapp/internal/web"
	"github.com/burnrate/burnrate/demoapp/resilience"
	"github.com/burnrate/burnrate/demoapp/telemetry"
)

// Product is an item of the catalogue.
type Product struct {
	ID         int    `json:"id"`
	Name       string `json:"name"`
	PriceCents int    `json:"price_cents"`
	Stock      int    `json:"stock"`
}

// ProductKey is the store key of product id.
func ProductKey(id int) string { return "product:" + strconv.Itoa(id) }

// SeedProduct is product id of the demo catalogue, deterministic so that
// every start and every shard agree.
func SeedProduct(id int) Product {
	adjectives := []string{"Sturdy", "Quiet", "Bright", "Compact", "Classic", "Swift", "Cosy", "Tidy"}
	nouns := []string{"Kettle", "Lamp", "Backpack", "Notebook", "Mug", "Chair", "Scarf", "Speaker", "Bottle"}
	return Product{
		ID:         id,
		Name:       fmt.Sprintf("%s %s %d", adjectives[id%len(adjectives)], nouns[(id/len(adjectives))%len(nouns)], id),
		PriceCents: 199 + (id*7919)%9800,
		Stock:      10 + (id*31)%500,
	}
}

// CartItem is a line of a cart or an order.
type CartItem struct {
	ProductID  int `json:"product_id"`
	Qty        int `json:"qty"`
	PriceCents int `json:"price_cents"`
}

// Cart is a user's cart.
type Cart struct {
	User  string     `json:"user"`
	Items []CartItem `json:"items"`
}

// Order is a placed order.
type Order struct {
	ID         string     `json:"id"`
	User       string     `json:"user"`
	Items      []CartItem `json:"items"`
	TotalCents int        `json:"total_cents"`
	PlacedAt   time.Time  `json:"placed_at"`
}

// API is one replica of the application tier.
type API struct {
	cache  *resilience.Client
	base   string
	faults *faults.Set
	tel    *telemetry.Providers
	now    func() time.Time
}

// New returns an API replica that reads and writes through the cache at
// cacheURL.
func New(cacheURL string, pool *resilience.Pool, cfg resilience.Config, set *faults.Set, tel *telemetry.Providers) *API {
	return &API{
		cache:  pool.Client("cache", cfg, func() bool { return set.State().Unreachable[faults.Cache] }),
		base:   strings.TrimSuffix(cacheURL, "/"),
		faults: set,
		tel:    tel,
		now:    time.Now,
	}
}

// Routes are the API's endpoints, as http.ServeMux patterns; the edge
// routes the same patterns so that its metrics carry http.route.
var Routes = []string{
	"GET /api/products/{id}",
	"GET /api/carts/{user}",
	"PUT /api/carts/{user}/items/{product}",
	"POST /api/orders",
	"GET /api/orders/{id}",
}

// Handler is the API, instrumented as service demo-api.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+web.HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		if a.faults.State().APIUnready {
			web.Error(w, http.StatusServiceUnavailable, "not ready (api.unready)")
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	handlers := []http.HandlerFunc{a.getProduct, a.getCart, a.putCartItem, a.postOrder, a.getOrder}
	for i, p := range Routes {
		mux.HandleFunc(p, handlers[i])
	}
	return web.Server(web.Faulty(a.faults, faults.API, mux), a.tel)
}

// errNotFound and errDependency classify cache answers for the HTTP status.
var (
	errNotFound   = errors.New("not found")
	errDependency = errors.New("dependency failed")
)

func (a *API) get(ctx context.Context, key string, h http.Header, into any) error {
	resp, err := a.cache.Do(ctx, http.MethodGet, a.base+"/kv/"+url.PathEscape(key), nil, h)
	if err != nil {
		return fmt.Errorf("%w: %w", errDependency, err)
	}
	switch resp.Status {
	case http.StatusOK:
		if err := json.Unmarshal(resp.Body, into); err != nil {
			return fmt.Errorf("%w: %s: %w", errDependency, key, err)
		}
		return nil
	case http.StatusNotFound:
		return errNotFound
	}
	return fmt.Errorf("%w: cache answered %d", errDependency, resp.Status)
}

func (a *API) put(ctx context.Context, key string, h http.Header, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	resp, err := a.cache.Do(ctx, http.MethodPut, a.base+"/kv/"+url.PathEscape(key), body, h)
	if err != nil {
		return fmt.Errorf("%w: %w", errDependency, err)
	}
	if resp.Status != http.StatusNoContent {
		return fmt.Errorf("%w: cache answered %d", errDependency, resp.Status)
	}
	return nil
}

// batch writes keys of one shard at once through the cache.
func (a *API) batch(ctx context.Context, h http.Header, kvs map[string]any) error {
	type kv struct {
		K string          `json:"k"`
		V json.RawMessage `json:"v"`
	}
	var list []kv
	for k, v := range kvs {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		list = append(list, kv{K: k, V: b})
	}
	body, err := json.Marshal(list)
	if err != nil {
		return err
	}
	resp, err := a.cache.Do(ctx, http.MethodPost, a.base+"/batch", body, h)
	if err != nil {
		return fmt.Errorf("%w: %w", errDependency, err)
	}
	if resp.Status != http.StatusNoContent {
		return fmt.Errorf("%w: cache answered %d", errDependency, resp.Status)
	}
	return nil
}

func (a *API) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errNotFound):
		web.Error(w, http.StatusNotFound, "not found")
	case errors.Is(err, resilience.ErrBreakerOpen):
		w.Header().Set("Retry-After", "2")
		web.Error(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		web.Error(w, http.StatusGatewayTimeout, err.Error())
	default:
		web.Error(w, http.StatusBadGateway, err.Error())
	}
}

func (a *API) getProduct(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 0 {
		web.Error(w, http.StatusBadRequest, "product id: want a whole number")
		return
	}
	var p Product
	if err := a.get(r.Context(), ProductKey(id), forward(r), &p); err != nil {
		a.fail(w, err)
		return
	}
	web.JSON(w, http.StatusOK, p)
}

func (a *API) cart(ctx context.Context, user string, h http.Header) (Cart, error) {
	c := Cart{User: user, Items: []CartItem{}}
	err := a.get(ctx, cartKey(user), h, &c)
	if errors.Is(err, errNotFound) {
		return c, nil
	}
	return c, err
}

func (a *API) getCart(w http.ResponseWriter, r *http.Request) {
	c, err := a.cart(r.Context(), r.PathValue("user"), forward(r))
	if err != nil {
		a.fail(w, err)
		return
	}
	web.JSON(w, http.StatusOK, c)
}

func (a *API) putCartItem(w http.ResponseWriter, r *http.Request) {
	pid, err := strconv.Atoi(r.PathValue("product"))
	if err != nil || pid < 0 {
		web.Error(w, http.StatusBadRequest, "product id: want a whole number")
		return
	}
	var req struct {
		Qty int `json:"qty"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || req.Qty < 0 || req.Qty > 1000 {
		web.Error(w, http.StatusBadRequest, `body: want {"qty": N} with N between 0 and 1000`)
		return
	}
	h := forward(r)
	var p Product
	if err := a.get(r.Context(), ProductKey(pid), h, &p); err != nil {
		a.fail(w, err)
		return
	}
	c, err := a.cart(r.Context(), r.PathValue("user"), h)
	if err != nil {
		a.fail(w, err)
		return
	}
	items := c.Items[:0]
	for _, it := range c.Items {
		if it.ProductID != pid {
			items = append(items, it)
		}
	}
	if req.Qty > 0 {
		items = append(items, CartItem{ProductID: pid, Qty: req.Qty, PriceCents: p.PriceCents})
	}
	c.Items = items
	if err := a.put(r.Context(), cartKey(c.User), h, c); err != nil {
		a.fail(w, err)
		return
	}
	web.JSON(w, http.StatusOK, c)
}

// IdempotencyKeyHeader makes POST /api/orders safe to retry.
const IdempotencyKeyHeader = "Idempotency-Key"

// orderKey is the store key of order hexID of user: tagged with the cart's
// key so both live on one shard and are written in one batch.
func orderKey(user, hexID string) string { return "order:{" + cartKey(user) + "}:" + hexID }

func cartKey(user string) string { return "cart:" + user }

// orderID is the public ID of an order: its hex part, a dot, the user.
func orderID(user, hexID string) string { return hexID + "." + user }

func (a *API) postOrder(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User string `json:"user"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || req.User == "" {
		web.Error(w, http.StatusBadRequest, `body: want {"user": "..."}`)
		return
	}
	h := forward(r)
	var hexID string
	if ik := r.Header.Get(IdempotencyKeyHeader); ik != "" {
		if len(ik) > 255 {
			web.Error(w, http.StatusBadRequest, "Idempotency-Key: at most 255 characters")
			return
		}
		sum := sha256.Sum256([]byte(req.User + "\x00" + ik))
		hexID = hex.EncodeToString(sum[:8])
		// A retry of a request that was placed: answer the same order.
		var placed Order
		err := a.get(r.Context(), orderKey(req.User, hexID), h, &placed)
		if err == nil {
			w.Header().Set("Idempotent-Replayed", "true")
			w.Header().Set("Location", "/api/orders/"+placed.ID)
			web.JSON(w, http.StatusOK, placed)
			return
		}
		if !errors.Is(err, errNotFound) {
			a.fail(w, err)
			return
		}
	} else {
		var idb [8]byte
		_, _ = rand.Read(idb[:])
		hexID = hex.EncodeToString(idb[:])
	}
	c, err := a.cart(r.Context(), req.User, h)
	if err != nil {
		a.fail(w, err)
		return
	}
	if len(c.Items) == 0 {
		web.Error(w, http.StatusUnprocessableEntity, "cart is empty")
		return
	}
	o := Order{ID: orderID(req.User, hexID), User: req.User, Items: c.Items, PlacedAt: a.now().UTC()}
	for _, it := range c.Items {
		o.TotalCents += it.Qty * it.PriceCents
	}
	// One batch: the order and the emptied cart, or neither.
	if err := a.batch(r.Context(), h, map[string]any{
		orderKey(req.User, hexID): o,
		cartKey(req.User):         Cart{User: req.User, Items: []CartItem{}},
	}); err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Location", "/api/orders/"+o.ID)
	web.JSON(w, http.StatusCreated, o)
}

func (a *API) getOrder(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	key := "order:" + id // orders placed before IDs named their user
	if hexID, user, ok := strings.Cut(id, "."); ok {
		key = orderKey(user, hexID)
	}
	var o Order
	if err := a.get(r.Context(), key, forward(r), &o); err != nil {
		a.fail(w, err)
		return
	}
	web.JSON(w, http.StatusOK, o)
}

func forward(r *http.Request) http.Header {
	if id := r.Header.Get(web.RequestIDHeader); id != "" {
		return http.Header{web.RequestIDHeader: {id}}
	}
	return nil
}
