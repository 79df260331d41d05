-- wrk script of the mixed load: GET product, GET order, POST order,
-- GET /orders, in turn, on the product "perf-product" and the order whose
-- id follows the URL: wrk -s scripts/mixed.lua URL -- ORDER_ID
local reqs, i = {}, 0
function init(args)
	local body = '{"order_details": [{"product_id": "perf-product", "price": "100000.99", "quantity": 1}]}'
	reqs[1] = wrk.format("GET", "/products/perf-product")
	reqs[2] = wrk.format("GET", "/orders/" .. args[1])
	reqs[3] = wrk.format("POST", "/orders", {["Content-Type"] = "application/json"}, body)
	reqs[4] = wrk.format("GET", "/orders")
end
function request()
	i = i % #reqs + 1
	return reqs[i]
end
