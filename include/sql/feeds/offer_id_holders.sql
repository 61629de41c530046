-- Stored ids among the wanted ones, held by other products (a new product wanting one is a clash).
select offer_id, product_id from offer_id where marketplace = %(marketplace)s and offer_id = any(%(wanted)s)
