// The AWS Step Functions API, as the console calls it: POST / with the JSON 1.0 protocol,
// the same operations any AWS client uses (no second path to the data), and stepwise's own
// (`Stepwise.<Op>`, docs/redrive-extensions.md) where AWS has none.

export class ApiError extends Error {
  constructor(type, message) {
    super(`${type}: ${message}`);
    this.type = type;
  }
}

export async function call(op, body = {}, service = "AWSStepFunctions") {
  const response = await fetch("/", {
    method: "POST",
    headers: {
      "Content-Type": "application/x-amz-json-1.0",
      "X-Amz-Target": `${service}.${op}`,
    },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  let value = {};
  try {
    value = text ? JSON.parse(text) : {};
  } catch {
    throw new ApiError("InvalidResponse", text.slice(0, 200));
  }
  if (!response.ok) {
    const type = String(value.__type || response.status).split("#").pop();
    throw new ApiError(type, value.message || value.Message || "");
  }
  return value;
}

// Every page of a list operation (`key` holds the items), at most `limit` items.
export async function all(op, body, key, limit = 10000, service = undefined) {
  const items = [];
  let nextToken;
  do {
    const page = await call(op, { ...body, ...(nextToken ? { nextToken } : {}) }, service);
    items.push(...(page[key] || []));
    nextToken = page.nextToken;
  } while (nextToken && items.length < limit);
  return items;
}
