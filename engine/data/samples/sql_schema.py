"""The schema behind the SQL sample data, and the helpers that turn a query into text.

``TABLES`` describes ten tables of a toy shop/company/university database: their columns, the
English phrases that describe conditions on them and the plausible values to draw from. The
small helpers here format words (``label``, ``and_list``, ``cap``), build a tiny SQL AST
(``query``) and render it in the two answer styles the datasets contrast: ``one_line`` (the
plain, rejected style) and ``pretty`` (the preferred style: a comment line, then one clause per
line). ``schema_text`` is the table description that opens every prompt. Nothing here draws
random numbers.
"""

from __future__ import annotations

TABLES: dict[str, dict] = {
    "users": {
        "columns": ["id", "name", "email", "age", "city", "signup_date"],
        "singular": "user",
        "show": ["name", "email", "age", "city"],
        "nums": {
            "age": {
                "label": "age",
                "ops": {">": "older than {v}", "<": "younger than {v}", ">=": "aged {v} or older"},
                "values": [18, 21, 25, 30, 35, 40, 45, 50, 60, 65],
                "aggs": ["AVG", "MAX", "MIN"],
                "superlative": ("oldest", "youngest"),
            },
        },
        "cat": {"col": "city", "label": "city", "plural": "cities", "phrase": "in {v}",
                "values": ["Paris", "Berlin", "Madrid", "Tokyo", "Toronto", "Lagos", "Chicago", "Sydney"]},
        "likes": [("name", "starts", v) for v in "ABCJKMS"]
        + [("email", "ends", v) for v in ("@gmail.com", "@example.org", "@yahoo.com")],
        "date": {"col": "signup_date", "verb": "who signed up"},
    },
    "orders": {
        "columns": ["id", "user_id", "product_id", "quantity", "amount", "status", "order_date"],
        "singular": "order",
        "show": ["id", "user_id", "quantity", "amount", "order_date"],
        "nums": {
            "amount": {
                "label": "amount",
                "ops": {">": "with an amount above {v}", "<": "with an amount below {v}"},
                "values": [20, 50, 100, 200, 250, 500, 1000],
                "aggs": ["SUM", "AVG", "MAX"],
            },
            "quantity": {
                "label": "quantity",
                "ops": {">": "with a quantity above {v}", ">=": "with a quantity of at least {v}"},
                "values": [1, 2, 3, 5, 10],
                "aggs": ["SUM", "AVG"],
            },
        },
        "cat": {"col": "status", "label": "status", "plural": "statuses", "phrase": "with status '{v}'",
                "values": ["pending", "shipped", "delivered", "cancelled", "returned"]},
        "likes": [],
        "date": {"col": "order_date", "verb": "placed"},
    },
    "products": {
        "columns": ["id", "name", "category", "price", "stock"],
        "singular": "product",
        "show": ["name", "category", "price", "stock"],
        "nums": {
            "price": {
                "label": "price",
                "ops": {">": "priced above {v}", "<": "priced below {v}"},
                "values": [5, 10, 20, 25, 50, 100, 200, 500],
                "aggs": ["AVG", "MAX", "MIN"],
                "superlative": ("most expensive", "cheapest"),
            },
            "stock": {
                "label": "stock",
                "ops": {"<": "with fewer than {v} units in stock", ">": "with more than {v} units in stock"},
                "values": [5, 10, 20, 50, 100],
                "aggs": ["SUM", "MIN", "AVG"],
            },
        },
        "cat": {"col": "category", "label": "category", "plural": "categories",
                "phrase": "in the {v} category",
                "values": ["electronics", "books", "toys", "garden", "clothing", "kitchen", "sports"]},
        "likes": [("name", "contains", v) for v in ("Pro", "Mini", "Max", "Smart", "Eco")],
        "date": None,
    },
    "employees": {
        "columns": ["id", "name", "department_id", "title", "salary", "hire_date"],
        "singular": "employee",
        "show": ["name", "title", "salary", "hire_date"],
        "nums": {
            "salary": {
                "label": "salary",
                "ops": {">": "earning more than {v}", "<": "earning less than {v}", ">=": "earning at least {v}"},
                "values": [40000, 50000, 60000, 75000, 90000, 100000, 120000],
                "aggs": ["AVG", "MAX", "MIN", "SUM"],
                "superlative": ("highest-paid", "lowest-paid"),
            },
        },
        "cat": {"col": "title", "label": "job title", "plural": "job titles",
                "phrase": "with the job title {v}",
                "values": ["Engineer", "Analyst", "Manager", "Designer", "Accountant", "Recruiter"]},
        "likes": [("name", "starts", v) for v in "ADEHLRT"],
        "date": {"col": "hire_date", "verb": "hired"},
    },
    "departments": {
        "columns": ["id", "name", "location", "budget"],
        "singular": "department",
        "show": ["name", "location", "budget"],
        "nums": {
            "budget": {
                "label": "budget",
                "ops": {">": "with a budget over {v}", "<": "with a budget under {v}"},
                "values": [50000, 100000, 250000, 500000, 1000000],
                "aggs": ["SUM", "AVG", "MAX"],
            },
        },
        "cat": {"col": "location", "label": "location", "plural": "locations", "phrase": "located in {v}",
                "values": ["London", "New York", "Singapore", "Austin", "Dublin"]},
        "likes": [("name", "contains", v) for v in ("Sales", "Research", "Support")],
        "date": None,
    },
    "customers": {
        "columns": ["id", "name", "email", "country", "credit_limit", "joined_on"],
        "singular": "customer",
        "show": ["name", "email", "country", "credit_limit"],
        "nums": {
            "credit_limit": {
                "label": "credit limit",
                "ops": {">": "with a credit limit above {v}", "<": "with a credit limit below {v}"},
                "values": [500, 1000, 2500, 5000, 10000],
                "aggs": ["AVG", "MAX", "SUM"],
            },
        },
        "cat": {"col": "country", "label": "country", "plural": "countries", "phrase": "from {v}",
                "values": ["France", "Germany", "Japan", "Brazil", "Canada", "India", "Kenya", "Mexico"]},
        "likes": [("name", "starts", v) for v in "BFGNPW"]
        + [("email", "ends", v) for v in ("@gmail.com", "@outlook.com", "@example.com")],
        "date": {"col": "joined_on", "verb": "who joined"},
    },
    "invoices": {
        "columns": ["id", "customer_id", "amount", "status", "issued_on"],
        "singular": "invoice",
        "show": ["id", "customer_id", "amount", "issued_on"],
        "nums": {
            "amount": {
                "label": "amount",
                "ops": {">": "with an amount over {v}", "<": "with an amount under {v}"},
                "values": [100, 250, 500, 1000, 2000, 5000],
                "aggs": ["SUM", "AVG", "MAX"],
            },
        },
        "cat": {"col": "status", "label": "status", "plural": "statuses", "phrase": "with status '{v}'",
                "values": ["paid", "unpaid", "overdue", "void"]},
        "likes": [],
        "date": {"col": "issued_on", "verb": "issued"},
    },
    "students": {
        "columns": ["id", "name", "major", "gpa", "enrollment_year"],
        "singular": "student",
        "show": ["name", "major", "gpa", "enrollment_year"],
        "nums": {
            "gpa": {
                "label": "GPA",
                "ops": {">": "with a GPA above {v}", "<": "with a GPA below {v}", ">=": "with a GPA of at least {v}"},
                "values": [2.0, 2.5, 3.0, 3.2, 3.5, 3.7, 3.8],
                "aggs": ["AVG", "MAX", "MIN"],
            },
            "enrollment_year": {
                "label": "enrollment year",
                "ops": {">": "who enrolled after {v}", "<": "who enrolled before {v}"},
                "values": [2018, 2019, 2020, 2021, 2022, 2023],
                "aggs": [],
            },
        },
        "cat": {"col": "major", "label": "major", "plural": "majors", "phrase": "majoring in {v}",
                "values": ["Biology", "History", "Physics", "Economics", "Mathematics", "Chemistry", "Philosophy"]},
        "likes": [("name", "starts", v) for v in "CEILOS"],
        "date": None,
    },
    "courses": {
        "columns": ["id", "title", "department", "credits"],
        "singular": "course",
        "show": ["title", "department", "credits"],
        "nums": {
            "credits": {
                "label": "credits",
                "ops": {">": "worth more than {v} credits", ">=": "worth at least {v} credits",
                        "<": "worth fewer than {v} credits"},
                "values": [2, 3, 4, 5],
                "aggs": ["SUM", "AVG", "MAX"],
            },
        },
        "cat": {"col": "department", "label": "department", "plural": "departments",
                "phrase": "in the {v} department",
                "values": ["Mathematics", "Biology", "History", "Computer Science", "Economics"]},
        "likes": [("title", "contains", v) for v in ("Introduction", "Advanced", "Data", "Theory", "Lab")],
        "date": None,
    },
    "enrollments": {
        "columns": ["id", "student_id", "course_id", "grade"],
        "singular": "enrollment",
    },
}
SINGLE_TABLES = [name for name in TABLES if name != "enrollments"]
VERBS = ["Find", "List", "Show", "Get", "Return", "Retrieve"]
FUNC_WORD = {"AVG": "average", "MAX": "highest", "MIN": "lowest", "SUM": "total"}
FUNC_ALIAS = {"AVG": "avg", "MAX": "max", "MIN": "min", "SUM": "total"}
GRADES = ["A", "B", "C", "D", "F"]
ORDERS_STATUS = TABLES["orders"]["cat"]["values"]
INVOICE_STATUS = TABLES["invoices"]["cat"]["values"]


def label(col: str) -> str:
    return {"id": "ID", "gpa": "GPA", "user_id": "user ID", "customer_id": "customer ID",
            "issued_on": "issue date", "joined_on": "join date"}.get(
        col, col.replace("_", " "))


def and_list(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def cap(text: str) -> str:
    return text[0].upper() + text[1:]


def query(select, frm, joins=(), where=(), group=(), having=None, order=(), limit=None, distinct=False):
    """A tiny SQL AST: both answer styles are rendered from it, so they always agree."""
    return {"select": list(select), "from": frm, "joins": list(joins), "where": list(where),
            "group": list(group), "having": having, "order": list(order), "limit": limit,
            "distinct": distinct}


def one_line(q: dict) -> str:
    parts = ["SELECT " + ("DISTINCT " if q["distinct"] else "") + ", ".join(q["select"]),
             "FROM " + " ".join([q["from"], *q["joins"]])]
    if q["where"]:
        parts.append("WHERE " + " AND ".join(q["where"]))
    if q["group"]:
        parts.append("GROUP BY " + ", ".join(q["group"]))
    if q["having"]:
        parts.append("HAVING " + q["having"])
    if q["order"]:
        parts.append("ORDER BY " + ", ".join(q["order"]))
    if q["limit"] is not None:
        parts.append(f"LIMIT {q['limit']}")
    return " ".join(parts) + ";"


def pretty(q: dict, comment: str) -> str:
    """Preferred style: a comment line, then every clause keyword on its own line."""
    ind = "    "

    def listed(items):
        return [ind + item + ("," if i < len(items) - 1 else "") for i, item in enumerate(items)]

    lines = ["-- " + comment, "SELECT DISTINCT" if q["distinct"] else "SELECT", *listed(q["select"]),
             "FROM", ind + q["from"], *[ind + j for j in q["joins"]]]
    if q["where"]:
        lines += ["WHERE", ind + q["where"][0], *[ind + "AND " + w for w in q["where"][1:]]]
    if q["group"]:
        lines += ["GROUP BY", *listed(q["group"])]
    if q["having"]:
        lines += ["HAVING", ind + q["having"]]
    if q["order"]:
        lines += ["ORDER BY", *listed(q["order"])]
    if q["limit"] is not None:
        lines += ["LIMIT", ind + str(q["limit"])]
    return "\n".join(lines) + ";"


def schema_text(tables: list[str]) -> str:
    defs = [f"{t}({', '.join(TABLES[t]['columns'])})" for t in tables]
    return ("Table " if len(defs) == 1 else "Tables ") + and_list(defs) + "."
