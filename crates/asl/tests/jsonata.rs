//! JSONata as Step Functions runs it: the standard library, the functions AWS adds, and the
//! errors, as a table of expression → result. Expected values follow jsonata-js 2.0.6 (the
//! version AWS runs) and the AWS-recorded corpus.

use asl::jsonata::{Env, States, Template};
use asl::memory::Metered;
use asl::Entropy;
use serde_json::{json, Map, Value};

/// Evaluations get their memory bound, as in the server.
#[global_allocator]
static ALLOCATOR: Metered<std::alloc::System> = Metered(std::alloc::System);

/// 2024-02-07T13:52:02.123Z
const NOW: i64 = 1_707_313_922_123;

fn input() -> Value {
    json!({
        "name": "Ada Lovelace",
        "tags": ["b", "a", "c", "a"],
        "nums": [3, 1, 4, 1, 5],
        "orders": [
            {"id": "o1", "customer": "x", "price": 10.5, "qty": 2},
            {"id": "o2", "customer": "y", "price": 3, "qty": 1},
            {"id": "o3", "customer": "x", "price": 7, "qty": 4}
        ],
        "nested": {"a": {"b": [{"c": 1}, {"c": 2}]}},
        "text": "The quick brown fox",
        "json": "{\"k\": [1, 2]}",
        "empty": [],
        "flag": false,
        "nothing": null
    })
}

/// Evaluates `{% expr %}` as the `Output` of a state whose input is [`input`], with `$x`
/// bound to 5 and `$who` to "world"; errors come back as their cause.
fn eval(expr: &str) -> Result<Value, String> {
    let template = Template::compile(&json!(format!("{{% {expr} %}}")), "Output", false)
        .map_err(|e| format!("{}: {}", e.code, e.message))?;
    let input = input();
    let context = json!({"Execution": {"Name": "exec"}, "State": {"Name": "S"}});
    let variables: Map<String, Value> = json!({"x": 5, "who": "world"})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut entropy = Entropy::new(7);
    let mut env = Env {
        states: States {
            input: &input,
            context: &context,
            result: None,
            error_output: None,
        },
        variables: &variables,
        now: NOW,
        entropy: &mut entropy,
    };
    template
        .render(&mut env)
        .map_err(|e| e.cause.unwrap_or_default())
}

/// Every expression evaluates to its value; the failures are listed together.
fn assert_evaluates(cases: &[(impl AsRef<str>, Value)]) {
    let mut failures = Vec::new();
    for (expr, want) in cases {
        let expr = expr.as_ref();
        match eval(expr) {
            Ok(got) if &got == want => {}
            got => failures.push(format!("{expr}\n    want {want}\n    got  {got:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn standard_library() {
    let i = "$states.input";
    let cases: Vec<(String, Value)> = vec![
        // Paths, predicates, wildcards, descendants.
        (format!("{i}.name"), json!("Ada Lovelace")),
        (format!("{i}.orders.id"), json!(["o1", "o2", "o3"])),
        (format!("{i}.orders[price > 5].id"), json!(["o1", "o3"])),
        (format!("{i}.orders[0].id"), json!("o1")),
        (format!("{i}.orders[-1].id"), json!("o3")),
        (format!("{i}.orders[customer = 'y'].id"), json!("o2")),
        (format!("{i}.orders[customer = 'y'][].id"), json!(["o2"])),
        (format!("{i}.nested.*.b.c"), json!([1, 2])),
        (format!("{i}.**.c"), json!([1, 2])),
        (format!("{i}.nested.a.b[1].c"), json!(2)),
        (format!("$count({i}.empty)"), json!(0)),
        // Operators.
        ("1 + 2 * 3".into(), json!(7)),
        ("7 % 3".into(), json!(1)),
        ("10 / 4".into(), json!(2.5)),
        ("0.1 + 0.2".into(), json!(0.30000000000000004)),
        ("'a' & 1 & true".into(), json!("a1true")),
        ("3 in [1, 2, 3]".into(), json!(true)),
        ("[1..5]".into(), json!([1, 2, 3, 4, 5])),
        ("1 < 2 and 'b' > 'a' or false".into(), json!(true)),
        (format!("{i}.flag ? 'yes' : 'no'"), json!("no")),
        ("$x * 2".into(), json!(10)),
        ("'hello ' & $who".into(), json!("hello world")),
        ("$states.context.State.Name".into(), json!("S")),
        // String functions.
        ("$string(1e21)".into(), json!("1e+21")),
        (
            "$string({'a': [1, true]})".into(),
            json!("{\"a\":[1,true]}"),
        ),
        ("$string(12.50)".into(), json!("12.5")),
        (format!("$length({i}.name)"), json!(12)),
        (format!("$substring({i}.name, 4)"), json!("Lovelace")),
        (format!("$substring({i}.name, -4, 2)"), json!("la")),
        (format!("$substringBefore({i}.name, ' ')"), json!("Ada")),
        (format!("$substringAfter({i}.name, ' ')"), json!("Lovelace")),
        (format!("$uppercase({i}.name)"), json!("ADA LOVELACE")),
        (format!("$lowercase({i}.name)"), json!("ada lovelace")),
        ("$trim('  a   b  ')".into(), json!("a b")),
        ("$pad('7', 3, '0')".into(), json!("7  ".replace(' ', "0"))),
        ("$pad('7', -3, '0')".into(), json!("007")),
        ("$pad('abc', 5)".into(), json!("abc  ")),
        ("$pad('abc', 2)".into(), json!("abc")),
        ("$pad('a', 4, 'xy')".into(), json!("axyx")),
        ("$pad('é', -3, '€')".into(), json!("€€é")),
        (
            "$states.input.name ~> $pad(15, '.')".into(),
            json!("Ada Lovelace..."),
        ),
        (format!("$contains({i}.text, 'quick')"), json!(true)),
        (format!("$contains({i}.text, /Q.*K/i)"), json!(true)),
        (format!("$split({i}.text, ' ', 2)"), json!(["The", "quick"])),
        (
            format!("$split({i}.text, /\\s+/)"),
            json!(["The", "quick", "brown", "fox"]),
        ),
        (format!("$join({i}.tags, '-')"), json!("b-a-c-a")),
        (
            format!("$match({i}.text, /o(\\w)/).groups"),
            json!(["w", "x"]),
        ),
        (
            format!("$replace({i}.text, 'quick', 'slow')"),
            json!("The slow brown fox"),
        ),
        (
            format!("$replace({i}.text, /(\\w+) (\\w+)/, '$2 $1', 1)"),
            json!("quick The brown fox"),
        ),
        ("$base64encode('hello')".into(), json!("aGVsbG8=")),
        ("$base64decode('aGVsbG8=')".into(), json!("hello")),
        (
            "$encodeUrlComponent('a b&c-d(é)')".into(),
            json!("a%20b%26c-d(%C3%A9)"),
        ),
        ("$decodeUrlComponent('a%20b')".into(), json!("a b")),
        (
            "$encodeUrl('https://x.org/a b?q=1&r=é#f')".into(),
            json!("https://x.org/a%20b?q=1&r=%C3%A9#f"),
        ),
        (
            "$contains(\"hello$world\", /^hello\\$/)".into(),
            json!(true),
        ),
        // Numeric functions.
        ("$number('2')".into(), json!(2)),
        ("$number('0x1F')".into(), json!(31)),
        ("$abs(-3.5)".into(), json!(3.5)),
        ("$floor(-3.5)".into(), json!(-4)),
        ("$ceil(3.2)".into(), json!(4)),
        ("$round(2.5)".into(), json!(2)),
        ("$round(3.5)".into(), json!(4)),
        ("$round(1.23456, 3)".into(), json!(1.235)),
        ("$power(2, 10)".into(), json!(1024)),
        ("$sqrt(16)".into(), json!(4)),
        (
            "$formatNumber(1234567.891, '#,##0.00')".into(),
            json!("1,234,567.89"),
        ),
        ("$formatNumber(0.25, '#%')".into(), json!("25%")),
        ("$formatBase(255, 16)".into(), json!("ff")),
        ("$formatInteger(12, 'w')".into(), json!("twelve")),
        ("$formatInteger(1999, 'I')".into(), json!("MCMXCIX")),
        ("$parseInteger('twelve', 'w')".into(), json!(12)),
        ("1/0".into(), json!("Infinity")),
        // Aggregation.
        (format!("$sum({i}.nums)"), json!(14)),
        (format!("$max({i}.nums)"), json!(5)),
        (format!("$min({i}.nums)"), json!(1)),
        (format!("$average({i}.nums)"), json!(2.8)),
        (format!("$count({i}.orders)"), json!(3)),
        (format!("$sum({i}.orders.(price * qty))"), json!(52)),
        // Boolean functions.
        ("$boolean('')".into(), json!(false)),
        ("$boolean([0])".into(), json!(false)),
        ("$boolean({'a': 1})".into(), json!(true)),
        (format!("$not({i}.flag)"), json!(true)),
        (format!("$exists({i}.missing)"), json!(false)),
        (format!("$exists({i}.nothing)"), json!(true)),
        // Array functions.
        (format!("$append({i}.nums, [9])"), json!([3, 1, 4, 1, 5, 9])),
        (format!("$sort({i}.nums)"), json!([1, 1, 3, 4, 5])),
        (
            format!("$sort({i}.orders, function($a, $b){{ $a.price < $b.price }}).id"),
            json!(["o1", "o3", "o2"]),
        ),
        (format!("$reverse({i}.tags)"), json!(["a", "c", "a", "b"])),
        (format!("$distinct({i}.tags)"), json!(["b", "a", "c"])),
        (
            "$zip([1, 2, 3], ['a', 'b'])".into(),
            json!([[1, "a"], [2, "b"]]),
        ),
        (format!("$count($shuffle({i}.nums))"), json!(5)),
        (format!("$sort($shuffle({i}.nums))"), json!([1, 1, 3, 4, 5])),
        // Object functions.
        (
            format!("$keys({i}.orders[0])"),
            json!(["id", "customer", "price", "qty"]),
        ),
        (format!("$lookup({i}.orders[1], 'price')"), json!(3)),
        (
            "$spread({'a': 1, 'b': 2})".into(),
            json!([{"a": 1}, {"b": 2}]),
        ),
        (
            "$merge([{'a': 1}, {'b': 2}, {'a': 3}])".into(),
            json!({"a": 3, "b": 2}),
        ),
        (
            "$each({'a': 1, 'b': 2}, function($v, $k){ $k & '=' & $v })".into(),
            json!(["a=1", "b=2"]),
        ),
        (
            "$sift({'a': 1, 'b': 2, 'c': 3}, function($v){ $v > 1 })".into(),
            json!({"b": 2, "c": 3}),
        ),
        (format!("$type({i}.nothing)"), json!("null")),
        (format!("$type({i}.orders)"), json!("array")),
        ("$type(function(){1})".into(), json!("function")),
        // Date and time (the clock is the injected one).
        ("$now()".into(), json!("2024-02-07T13:52:02.123Z")),
        ("$millis()".into(), json!(NOW)),
        ("$now('[Y0001]-[M01]-[D01]')".into(), json!("2024-02-07")),
        ("$now('[H01]:[m01]', '+0100')".into(), json!("14:52")),
        ("$fromMillis(0)".into(), json!("1970-01-01T00:00:00.000Z")),
        (
            "$fromMillis(1707313922123, '[D1o] [MNn] [Y]')".into(),
            json!("7th February 2024"),
        ),
        ("$toMillis('2024-02-07T13:52:02.123Z')".into(), json!(NOW)),
        (
            "$toMillis('07/02/2024', '[D01]/[M01]/[Y0001]')".into(),
            json!(1_707_264_000_000_i64),
        ),
        // Higher-order functions and lambdas.
        (
            format!("$map({i}.nums, function($v, $i){{ $v * $i }})"),
            json!([0, 1, 8, 3, 20]),
        ),
        (
            format!("$filter({i}.nums, function($v){{ $v > 2 }})"),
            json!([3, 4, 5]),
        ),
        (
            format!("$reduce({i}.nums, function($acc, $v){{ $acc + $v }}, 100)"),
            json!(114),
        ),
        (
            format!("$single({i}.orders, function($o){{ $o.price = 3 }}).id"),
            json!("o2"),
        ),
        (
            "($double := function($n){ $n * 2 }; $double(21))".into(),
            json!(42),
        ),
        (
            "($fact := function($n){ $n <= 1 ? 1 : $n * $fact($n - 1) }; $fact(10))".into(),
            json!(3628800),
        ),
        (
            "($add := function($a, $b){ $a + $b }; $inc := $add(?, 1); $inc(41))".into(),
            json!(42),
        ),
        ("(function($x){ $x * $x })(7)".into(), json!(49)),
        // Chains.
        (
            format!("{i}.name ~> $uppercase() ~> $substringBefore(' ')"),
            json!("ADA"),
        ),
        (
            format!("{i}.tags ~> $distinct ~> $sort"),
            json!(["a", "b", "c"]),
        ),
        (
            "($f := $uppercase ~> $trim; $f('  hi  '))".into(),
            json!("HI"),
        ),
        // Sorting and grouping.
        (format!("{i}.orders^(>price).id"), json!(["o1", "o3", "o2"])),
        (
            format!("{i}.orders^(customer, price).id"),
            json!(["o3", "o1", "o2"]),
        ),
        (
            format!("{i}.orders{{customer: $sum(price)}}"),
            json!({"x": 17.5, "y": 3}),
        ),
        (
            format!("{i}.orders{{customer: id}}"),
            json!({"x": ["o1", "o3"], "y": "o2"}),
        ),
        (
            format!("{i}.orders.{{'id': id, 'total': price * qty}}"),
            json!([{"id": "o1", "total": 21}, {"id": "o2", "total": 3}, {"id": "o3", "total": 28}]),
        ),
        (
            format!("{i}.orders#$pos[customer = 'x'].{{'at': $pos}}"),
            json!([{"at": 0}, {"at": 2}]),
        ),
        // Transforms and blocks.
        (
            format!("{i}.orders[0] ~> |$|{{'price': 0}}, ['qty']|"),
            json!({"id": "o1", "customer": "x", "price": 0}),
        ),
        ("($a := 2; $b := 3; $a * $b)".into(), json!(6)),
        // Functions Step Functions adds.
        (
            "$partition([1, 2, 3, 4, 5], 2)".into(),
            json!([[1, 2], [3, 4], [5]]),
        ),
        ("$partition([1, 2, 3], 2.9)".into(), json!([[1, 2], [3]])),
        ("$range(0, 10, 2)".into(), json!([0, 2, 4, 6, 8, 10])),
        ("$range(0, 10, 3)".into(), json!([0, 3, 6, 9])),
        ("$range(1, 9, 9)".into(), json!(1)),
        ("$range(5, 1, -2)".into(), json!([5, 3, 1])),
        (
            "$hash('input data', 'SHA-1')".into(),
            json!("aaff4a450a104cd177d28d18d74485e8cae074b7"),
        ),
        (
            "$hash('input data', 'MD5')".into(),
            json!("812f45842bc6d66ee14572ce20db8e86"),
        ),
        (format!("$parse({i}.json)"), json!({"k": [1, 2]})),
        ("$parse('-0')".into(), json!(0)),
        // Seeded, as `new java.util.Random(seed).nextDouble()` (printed by OpenJDK).
        ("$random(42)".into(), json!(0.7275636800328681)),
        ("$random(0)".into(), json!(0.730967787376657)),
        ("$random(-1)".into(), json!(0.26894263088050496)),
        ("$random(1099511627783)".into(), json!(0.1564802832706853)),
        ("$random(42.9)".into(), json!(0.7275636800328681)),
        (format!("$random({i}.nums[0])"), json!(0.731057369148862)),
        ("$random(42) = $random(42)".into(), json!(true)),
        ("$random() >= 0 and $random() < 1".into(), json!(true)),
        ("$length($uuid())".into(), json!(36)),
    ];
    assert_evaluates(&cases);
}

/// Look-around and back-references, which AWS's regular expressions have and the `regex`
/// crate lacks; expected values follow jsonata 2.0.6's functions.
#[test]
fn regular_expressions_beyond_the_regex_crate() {
    let cases: Vec<(&str, Value)> = vec![
        (r"$contains('price 100USD', /\d+(?=USD)/)", json!(true)),
        (r"$contains('price 100EUR', /\d+(?=USD)/)", json!(false)),
        (r"$contains('xAB', /a(?=b)/i)", json!(true)),
        (
            r"$match('100USD 200EUR', /\d+(?=USD)/)",
            json!({"match": "100", "index": 0, "groups": []}),
        ),
        (
            r"$match('abab é xyxy', /(\w\w)\1/)",
            json!([
                {"match": "abab", "index": 0, "groups": ["ab"]},
                {"match": "xyxy", "index": 7, "groups": ["xy"]}
            ]),
        ),
        (
            r"$match('abab xyxy', /(\w\w)\1/, 1)",
            json!({"match": "abab", "index": 0, "groups": ["ab"]}),
        ),
        (
            r"$replace('foo.bar', /(?<=\.)bar/, 'baz')",
            json!("foo.baz"),
        ),
        (
            r"$replace('aa bb cd', /(\w)\1/, '<$1|$0|$$|$9>')",
            json!("<a|aa|$|> <b|bb|$|> cd"),
        ),
        (r"$replace('aa bb cc', /(\w)\1/, '-', 2)", json!("- - cc")),
        (
            r"$split('a-1b-2c-d', /-(?=\d)/)",
            json!(["a", "1b", "2c-d"]),
        ),
        (r"$split('a-1b-2c-d', /-(?=\d)/, 1)", json!(["a"])),
        (
            r"$states.input.text ~> $contains(/quick(?= brown)/)",
            json!(true),
        ),
        // A regular expression the `regex` crate runs stays with jsonata-core.
        (r"$match('a1b2', /\d/).match", json!(["1", "2"])),
    ];
    assert_evaluates(&cases);
    let zero_length = r"$split('a1b', /(?=\d)/)";
    assert_eq!(
        eval(zero_length),
        Err(format!("The JSONata expression '{zero_length}' specified for the field 'Output' threw an error during evaluation. D1004: Regular expression matches zero length string"))
    );
    let runaway = r"$contains('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!', /^(a|aa)+\1$/)";
    let refused = eval(runaway).unwrap_err();
    assert!(
        refused.ends_with("Max limit for backtracking count exceeded"),
        "{refused}"
    );
}

/// No evaluation may hold more than `MAX_EVALUATION_BYTES`: a string padded or doubled to
/// 256 MiB fails, whether one call or many steps build it; one of a few MiB is fine.
#[test]
fn evaluations_are_bounded_in_memory() {
    for expr in [
        "$pad('', 268435456)",
        "$pad('', -2147483647, '€')",
        "$reduce([1..28], function($acc, $v) { $acc & $acc }, 'x')",
        "$reduce([1..28], function($acc, $v) { $join([$acc, $acc]) }, 'x')",
    ] {
        let refused = eval(expr).expect_err(expr);
        assert!(
            refused.ends_with("U1004: Evaluation used more than 67108864 bytes of memory"),
            "{expr}: {refused}"
        );
    }
    assert_eq!(eval("$length($pad('', 4000000))"), Ok(json!(4_000_000)));
    assert_eq!(
        eval("$length($reduce([1..20], function($acc, $v) { $acc & $acc }, 'x'))"),
        Ok(json!(1 << 20))
    );
}

#[test]
fn evaluation_errors() {
    let field = |expr: &str, what: &str| {
        format!("The JSONata expression '{expr}' specified for the field 'Output' {what}")
    };
    let cases = [
        ("$doesNotExist", field("$doesNotExist", "returned nothing (undefined).")),
        ("$states.input.missing", field("$states.input.missing", "returned nothing (undefined).")),
        ("function($x){$x}", field("function($x){$x}", "returned an unsupported result type.")),
        ("/ab/", field("/ab/", "returned an unsupported result type.")),
        (
            "$randomSeeded(1)",
            field("$randomSeeded(1)", "threw an error during evaluation. T1006: Attempted to invoke a non-function"),
        ),
        (
            "$eval('1 + 1')",
            field("$eval('1 + 1')", "threw an error during evaluation. T1006: Attempted to invoke a non-function"),
        ),
        (
            "'a' + 1",
            field("'a' + 1", "threw an error during evaluation. T2001: The left side of the + operator must evaluate to a number"),
        ),
        ("$error('boom')", field("$error('boom')", "threw an error during evaluation. D3137: boom")),
        (
            "$hash('a', 'SHA-3')",
            field("$hash('a', 'SHA-3')", "threw an error during evaluation. The hash algorithm 'SHA-3' is not supported; use one of [MD5, SHA-1, SHA-256, SHA-384, SHA-512]"),
        ),
        ("$partition([], 2)", field("$partition([], 2)", "returned nothing (undefined).")),
        ("$range(1, 5, -1)", field("$range(1, 5, -1)", "returned nothing (undefined).")),
    ];
    for (expr, want) in cases {
        assert_eq!(eval(expr), Err(want), "{expr}");
    }
}

#[test]
fn definition_checks() {
    let compile = |text: &str, catcher: bool| {
        Template::compile(&json!({"v": text}), "Output", catcher)
            .err()
            .map(|e| format!("{} {} {}", e.code, e.field, e.message))
    };
    let cases = [
        ("{% $states.input.items[value > 3] %}", false, None),
        ("{% $map($states.input.a, function($x){ $x.b }) %}", false, None),
        ("{% $states.errorOutput.Cause %}", true, None),
        ("{% $states.input.items^(>price, name).name %}", false, None),
        ("{% $states.input.items{type: $sum(price)} %}", false, None),
        ("{% $states.input.items.{'id': id, 'n': $count(tags)} %}", false, None),
        ("{% $states.input.items#$i[$i > 0].{'i': $i} %}", false, None),
        ("{% $states.input.items@$o.$o.id %}", false, None),
        ("{% $states.input.a ~> $map(function($v){ $v.b }) %}", false, None),
        ("{% $states.input ~> |items|{'seen': true}, ['secret']| %}", false, None),
        ("{% $states.input.items[type = 'x' and price > 1].name %}", false, None),
        ("not an expression: phone", false, None),
        (
            "{% phone %}",
            false,
            Some("UNSUPPORTED_JSONATA_EXPRESSION Output/v Reference to 'phone' at the top level is not supported."),
        ),
        (
            "{% $map($states.input.a, function($x){ b }) %}",
            false,
            Some("UNSUPPORTED_JSONATA_EXPRESSION Output/v Reference to 'b' at the top level is not supported."),
        ),
        (
            "{% $$.a %}",
            false,
            Some("UNSUPPORTED_JSONATA_EXPRESSION Output/v Reference to '$$' is not supported."),
        ),
        (
            "{% $states.errorOutput %}",
            false,
            Some("UNSUPPORTED_JSONATA_EXPRESSION Output/v Reference to '$states.errorOutput' is not supported."),
        ),
        // JSONata 2.1's operators: AWS runs 2.0.6, whose parser does not know them.
        (
            "{% $states.input.a ?? 0 %}",
            false,
            Some("INVALID_JSONATA_EXPRESSION Output/v S0211: The symbol ? cannot be used as a unary operator"),
        ),
        (
            "{% $states.input.a ?: 'none' %}",
            false,
            Some("INVALID_JSONATA_EXPRESSION Output/v S0211: The symbol : cannot be used as a unary operator"),
        ),
        (
            "{% $states.input.a ? 1 : 2 %}",
            false,
            None,
        ),
    ];
    for (text, catcher, want) in cases {
        assert_eq!(compile(text, catcher).as_deref(), want, "{text}");
    }
    let invalid = compile("{% a[1,2) %}", false).unwrap_or_default();
    assert!(
        invalid.starts_with("INVALID_JSONATA_EXPRESSION Output/v "),
        "{invalid}"
    );
}

#[test]
fn literals_pass_through_and_nested_expressions_render() {
    let template = Template::compile(
        &json!({"static": "Hello", "n": [1, "{% $x %}", {"deep": "{% $who %}"}], "plain": "$x"}),
        "Output",
        false,
    )
    .expect("compiles");
    let mut names = std::collections::BTreeSet::new();
    template.variables(&mut names);
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["who", "x"]);
    let variables = json!({"x": 5, "who": "w"})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let (input, context) = (json!({}), json!({}));
    let mut entropy = Entropy::new(1);
    let mut env = Env {
        states: States {
            input: &input,
            context: &context,
            result: None,
            error_output: None,
        },
        variables: &variables,
        now: NOW,
        entropy: &mut entropy,
    };
    assert_eq!(
        template.render(&mut env),
        Ok(json!({"static": "Hello", "n": [1, 5, {"deep": "w"}], "plain": "$x"}))
    );
}

#[test]
fn deep_or_runaway_expressions_fail_cleanly() {
    let deep = format!("{}1{}", "(".repeat(5_000), ")".repeat(5_000));
    let refused = eval(&deep).unwrap_err();
    assert!(
        refused.starts_with("INVALID_JSONATA_EXPRESSION"),
        "{refused}"
    );
    let recursion = "($f := function($n){ $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100000))";
    assert!(eval(recursion).is_err());
    assert!(eval("[1..10000000] ~> $count()").is_err());
}
