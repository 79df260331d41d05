package app

import (
	"github.com/airshipltd/airship/gateway"
	"github.com/airshipltd/airship/internal/telemetry"
	"github.com/airshipltd/airship/orders"
)

// instruments are the process's metrics and tracing (either may be off),
// handed to each module in the form it takes them.
type instruments struct{ telemetry.Instruments }

// ordersObserver is the orders module's observer, or nil; its metrics
// are exported from then on (a process exports the metrics of the modules
// it runs).
func (in instruments) ordersObserver() orders.Observer {
	if in.Metrics == nil {
		return nil
	}
	in.Metrics.RegisterOrders()
	return in.Metrics
}

// requestObserver is the gateway's observer, or nil; the API's metrics
// are exported from then on.
func (in instruments) requestObserver() gateway.RequestObserver {
	if in.Metrics == nil {
		return nil
	}
	in.Metrics.RegisterAPI()
	return in.Metrics
}

// gatewayTracing is the gateway's tracing, or nil.
func (in instruments) gatewayTracing() *gateway.Tracing {
	if in.Tracing == nil {
		return nil
	}
	return &gateway.Tracing{Tracer: in.Tracing.Tracer(), Propagator: in.Tracing.Propagator()}
}
