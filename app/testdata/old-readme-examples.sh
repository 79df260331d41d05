# The example commands of the old shop's README, verbatim, in its order.
# The old gateway listened on port 8003; the test serves airship there
# by replacing http://localhost:8003 with its own address, and changes
# nothing else.
curl -XPOST -d '{"id": "the_odyssey", "title": "The Odyssey", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 10}' 'http://localhost:8003/products'
curl 'http://localhost:8003/products/the_odyssey'
curl -XPOST -d '{"order_details": [{"product_id": "the_odyssey", "price": "100000.99", "quantity": 1}]}' 'http://localhost:8003/orders'
curl 'http://localhost:8003/orders/1'
