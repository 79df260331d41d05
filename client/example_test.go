package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/airshipltd/airship/client"
)

// The contract's example session.
func Example() {
	ctx := context.Background()
	c, err := client.New(airshipURL) // such as "http://localhost:8000"
	if err != nil {
		log.Fatal(err)
	}
	err = c.CreateProduct(ctx, client.NewProduct{
		ID: "the_odyssey", Title: "The Odyssey", PassengerCapacity: 101, MaximumSpeed: 5, InStock: 10,
	})
	if err != nil {
		log.Fatal(err)
	}
	// With an Idempotency-Key a retry (after a 503 or a lost connection)
	// cannot place the order twice.
	id, err := c.CreateOrder(ctx, client.NewIdempotencyKey(),
		client.NewOrderLine{ProductID: "the_odyssey", Price: client.Price("100000.99"), Quantity: 1})
	if err != nil {
		log.Fatal(err)
	}
	order, err := c.GetOrder(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	line := order.OrderDetails[0]
	fmt.Printf("order %d: %d × %s at %s, %d left\n", order.ID, line.Quantity, line.ProductID, line.Price, line.Product.InStock)

	if err := c.DeleteProduct(ctx, "the_odyssey"); err != nil {
		log.Fatal(err)
	}
	_, err = c.GetProduct(ctx, "the_odyssey")
	if errors.Is(err, client.ErrProductNotFound) {
		var e *client.Error
		errors.As(err, &e)
		fmt.Println(e.Status, e.Code, e.Message)
	}

	// Every order, page by page (following the Link headers).
	for o, err := range c.ListOrders(client.ListOrdersOptions{Limit: 50}).All(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("order %d: %d line(s)\n", o.ID, len(o.OrderDetails))
	}
	// Output:
	// order 1: 1 × the_odyssey at 100000.99, 9 left
	// 404 PRODUCT_NOT_FOUND Product ID the_odyssey does not exist
	// order 1: 1 line(s)
}
