"""Two-table request templates for the SQL sample data: joins over the schema's foreign keys.

Each ``j_*`` template covers one pair of joined tables (orders with users or products,
employees with departments, invoices with customers, enrollments with students or courses),
draws one of a few request kinds (lists, per-group aggregates, HAVING filters, DISTINCT
lookups, top-N) and returns ``(tables, request, comment, query)`` like the single-table
templates in ``sql_templates``. The order of the random draws is part of the output.
"""

from __future__ import annotations

from engine.data.samples.sql_schema import (
    FUNC_ALIAS,
    FUNC_WORD,
    GRADES,
    INVOICE_STATUS,
    ORDERS_STATUS,
    TABLES,
    cap,
    query,
)


def j_orders_users(rng):
    tables, frm, join = ["orders", "users"], "orders o", ["JOIN users u ON o.user_id = u.id"]
    kind = rng.choice(["list", "spent", "city", "distinct"])
    if kind == "list":
        f = rng.choice(["status", "city", "amount"])
        if f == "status":
            s = rng.choice(ORDERS_STATUS)
            filt, cond = f" for orders with status '{s}'", f"o.status = '{s}'"
        elif f == "city":
            city = rng.choice(TABLES["users"]["cat"]["values"])
            filt, cond = f" for users in {city}", f"u.city = '{city}'"
        else:
            v = rng.choice(TABLES["orders"]["nums"]["amount"]["values"])
            filt, cond = f" for orders with an amount above {v}", f"o.amount > {v}"
        request = f"List each order's ID and amount together with the name of the user who placed it{filt}."
        comment = f"Order IDs and amounts with the name of the user who placed them{filt}"
        return tables, request, comment, query(["o.id", "o.amount", "u.name"], frm, join, [cond])
    if kind == "spent":
        sel, grp = ["u.name", "SUM(o.amount) AS total_spent"], ["u.id", "u.name"]
        if rng.random() < 0.5:
            n = rng.choice([3, 5, 10])
            request = f"Show the {n} users who spent the most in total, with their name and total order amount."
            comment = f"Top {n} users by total order amount"
            return tables, request, comment, query(sel, frm, join, group=grp, order=["total_spent DESC"], limit=n)
        s = rng.choice(ORDERS_STATUS)
        request = f"Show each user's name and the total amount of their orders with status '{s}'."
        comment = f"Total amount of orders with status '{s}' per user"
        return tables, request, comment, query(sel, frm, join, [f"o.status = '{s}'"], grp)
    if kind == "city":
        where, filt = [], ""
        if rng.random() < 0.5:
            s = rng.choice(ORDERS_STATUS)
            where, filt = [f"o.status = '{s}'"], f" with status '{s}'"
        order, suffix = ([], "") if rng.random() < 0.5 else (["order_count DESC"], ", most orders first")
        request = f"How many orders{filt} were placed by users in each city{suffix}?"
        comment = f"Number of orders{filt} per user city{suffix}"
        return tables, request, comment, query(["u.city", "COUNT(*) AS order_count"], frm, join, where,
                                               ["u.city"], order=order)
    v = rng.choice(TABLES["orders"]["nums"]["amount"]["values"])
    request = f"Find the names of users who have placed at least one order with an amount above {v}."
    comment = f"Users with at least one order above {v}"
    return tables, request, comment, query(["u.name"], frm, join, [f"o.amount > {v}"], distinct=True)


def j_orders_products(rng):
    tables, frm, join = ["orders", "products"], "orders o", ["JOIN products p ON o.product_id = p.id"]
    kind = rng.choice(["list", "category", "revenue", "distinct"])
    cats = TABLES["products"]["cat"]["values"]
    if kind == "list":
        if rng.random() < 0.5:
            day = f"{rng.choice([2021, 2022, 2023, 2024])}-{rng.choice([1, 4, 7, 10]):02d}-01"
            filt, cond = f"placed after {day}", f"o.order_date > '{day}'"
        else:
            cat = rng.choice(cats)
            filt, cond = f"for a product in the {cat} category", f"p.category = '{cat}'"
        request = f"For every order {filt}, show the order ID, the product name and the quantity."
        comment = f"Order ID, product name and quantity of orders {filt}"
        return tables, request, comment, query(["o.id", "p.name", "o.quantity"], frm, join, [cond])
    if kind == "category":
        where, filt = [], ""
        if rng.random() < 0.5:
            s = rng.choice(ORDERS_STATUS)
            where, filt = [f"o.status = '{s}'"], f", counting only orders with status '{s}'"
        order, suffix = ([], "") if rng.random() < 0.5 else (["total_quantity DESC"], ", largest first")
        request = f"What is the total quantity ordered per product category{filt}{suffix}?"
        comment = f"Total quantity ordered per product category{filt}{suffix}"
        return tables, request, comment, query(["p.category", "SUM(o.quantity) AS total_quantity"], frm, join,
                                               where, ["p.category"], order=order)
    if kind == "revenue":
        cat = rng.choice(cats)
        request = f"What is the total order amount for each product in the {cat} category? Show the product name."
        comment = f"Total order amount per product in the {cat} category"
        return tables, request, comment, query(["p.name", "SUM(o.amount) AS total_amount"], frm, join,
                                               [f"p.category = '{cat}'"], ["p.id", "p.name"])
    s = rng.choice(ORDERS_STATUS)
    request = f"Which products appear in orders with status '{s}'? List each product name once."
    comment = f"Products that appear in orders with status '{s}'"
    return tables, request, comment, query(["p.name"], frm, join, [f"o.status = '{s}'"], distinct=True)


def j_employees_departments(rng):
    tables, frm, join = ["employees", "departments"], "employees e", ["JOIN departments d ON e.department_id = d.id"]
    kind = rng.choice(["list", "agg", "location", "having"])
    if kind == "list":
        f = rng.choice(["location", "salary", "title"])
        if f == "location":
            loc = rng.choice(TABLES["departments"]["cat"]["values"])
            filt, cond = f" for departments located in {loc}", f"d.location = '{loc}'"
        elif f == "salary":
            v = rng.choice(TABLES["employees"]["nums"]["salary"]["values"])
            filt, cond = f" for employees earning more than {v}", f"e.salary > {v}"
        else:
            title = rng.choice(TABLES["employees"]["cat"]["values"])
            filt, cond = f" for employees with the job title {title}", f"e.title = '{title}'"
        request = f"List each employee's name together with the name of their department{filt}."
        comment = f"Employee names with their department names{filt}"
        return tables, request, comment, query(["e.name", "d.name AS department_name"], frm, join, [cond])
    if kind == "agg":
        fn = rng.choice(["AVG", "MAX", "MIN", "SUM"])
        alias = f"{FUNC_ALIAS[fn]}_salary"
        order, suffix = ([], "") if rng.random() < 0.5 else ([f"{alias} DESC"], ", highest first")
        request = f"What is the {FUNC_WORD[fn]} employee salary in each department? Show the department name{suffix}."
        comment = f"{cap(FUNC_WORD[fn])} salary per department{suffix}"
        return tables, request, comment, query(["d.name AS department_name", f"{fn}(e.salary) AS {alias}"], frm,
                                               join, group=["d.id", "d.name"], order=order)
    if kind == "location":
        where, filt = [], ""
        if rng.random() < 0.5:
            v = rng.choice(TABLES["employees"]["nums"]["salary"]["values"])
            where, filt = [f"e.salary > {v}"], f" earning more than {v}"
        request = f"How many employees{filt} work in each department location?"
        comment = f"Number of employees{filt} per department location"
        return tables, request, comment, query(["d.location", "COUNT(*) AS employee_count"], frm, join, where,
                                               ["d.location"])
    n = rng.choice([5, 10, 20, 50])
    request = f"Which departments have more than {n} employees? Show the department name and the number of employees."
    comment = f"Departments with more than {n} employees"
    return tables, request, comment, query(["d.name AS department_name", "COUNT(*) AS employee_count"], frm, join,
                                           group=["d.id", "d.name"], having=f"COUNT(*) > {n}")


def j_invoices_customers(rng):
    tables, frm, join = ["invoices", "customers"], "invoices i", ["JOIN customers c ON i.customer_id = c.id"]
    kind = rng.choice(["list", "country", "distinct", "top"])
    countries = TABLES["customers"]["cat"]["values"]
    if kind == "list":
        if rng.random() < 0.5:
            s = rng.choice(INVOICE_STATUS)
            filt, cond = f"with status '{s}'", f"i.status = '{s}'"
        else:
            country = rng.choice(countries)
            filt, cond = f"of customers from {country}", f"c.country = '{country}'"
        request = f"Show the ID and amount of every invoice {filt}, together with the customer's name."
        comment = f"Invoices {filt} with the customer name"
        return tables, request, comment, query(["i.id", "i.amount", "c.name"], frm, join, [cond])
    if kind == "country":
        where, filt = [], ""
        if rng.random() < 0.5:
            s = rng.choice(INVOICE_STATUS)
            where, filt = [f"i.status = '{s}'"], f" with status '{s}'"
        order, suffix = ([], "") if rng.random() < 0.5 else (["total_amount DESC"], ", highest first")
        request = f"What is the total amount of invoices{filt} per customer country{suffix}?"
        comment = f"Total invoice amount{filt} per customer country{suffix}"
        return tables, request, comment, query(["c.country", "SUM(i.amount) AS total_amount"], frm, join, where,
                                               ["c.country"], order=order)
    if kind == "distinct":
        country = rng.choice(countries)
        v = rng.choice(TABLES["invoices"]["nums"]["amount"]["values"])
        request = f"Find the names of customers from {country} who have an invoice with an amount over {v}."
        comment = f"Customers from {country} with an invoice over {v}"
        return tables, request, comment, query(["c.name"], frm, join, [f"c.country = '{country}'", f"i.amount > {v}"],
                                               distinct=True)
    n = rng.choice([3, 5, 10])
    request = f"Which {n} customers have the most invoices? Show each customer's name and invoice count."
    comment = f"Top {n} customers by number of invoices"
    return tables, request, comment, query(["c.name", "COUNT(*) AS invoice_count"], frm, join,
                                           group=["c.id", "c.name"], order=["invoice_count DESC"], limit=n)


def j_enrollments(rng):
    if rng.random() < 0.5:
        tables, frm, join = ["enrollments", "students"], "enrollments e", ["JOIN students s ON e.student_id = s.id"]
        if rng.random() < 0.6:
            g = rng.choice(GRADES)
            where, filt = [f"e.grade = '{g}'"], ""
            if rng.random() < 0.4:
                major = rng.choice(TABLES["students"]["cat"]["values"])
                where, filt = where + [f"s.major = '{major}'"], f" majoring in {major}"
            request = f"Find the names of students{filt} who received the grade '{g}' in at least one course."
            comment = f"Students{filt} with at least one '{g}' grade"
            return tables, request, comment, query(["s.name"], frm, join, where, distinct=True)
        order, suffix = ([], "") if rng.random() < 0.5 else (["enrollment_count DESC"], ", most first")
        request = f"How many course enrollments are there per student major{suffix}?"
        comment = f"Number of enrollments per student major{suffix}"
        return tables, request, comment, query(["s.major", "COUNT(*) AS enrollment_count"], frm, join,
                                               group=["s.major"], order=order)
    tables, frm, join = ["enrollments", "courses"], "enrollments e", ["JOIN courses c ON e.course_id = c.id"]
    kind = rng.choice(["count", "having", "grade"])
    if kind == "grade":
        g = rng.choice(GRADES)
        request = f"Which courses have at least one enrollment with the grade '{g}'? List each course title once."
        comment = f"Courses with at least one '{g}' grade"
        return tables, request, comment, query(["c.title"], frm, join, [f"e.grade = '{g}'"], distinct=True)
    if kind == "having":
        n = rng.choice([10, 20, 30, 50, 100])
        request = f"List the titles of courses with more than {n} enrollments, along with their enrollment count."
        comment = f"Courses with more than {n} enrollments"
        return tables, request, comment, query(["c.title", "COUNT(*) AS enrollment_count"], frm, join,
                                               group=["c.id", "c.title"], having=f"COUNT(*) > {n}")
    where, filt = [], ""
    if rng.random() < 0.5:
        dept = rng.choice(TABLES["courses"]["cat"]["values"])
        where, filt = [f"c.department = '{dept}'"], f" in the {dept} department"
    request = f"How many enrollments does each course{filt} have? Show the course title."
    comment = f"Number of enrollments per course{filt}"
    return tables, request, comment, query(["c.title", "COUNT(*) AS enrollment_count"], frm, join, where,
                                           ["c.id", "c.title"])

