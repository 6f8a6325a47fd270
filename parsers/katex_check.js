#!/usr/bin/env node
// KaTeX formula checker: the Node side of scicurate.parsers.formula_check.FormulaChecker.
//
// Usage: node katex_check.js KATEX_DIR OPTIONS_JSON
//   KATEX_DIR     the installed katex package (node_modules/katex); its mhchem extension is loaded
//   OPTIONS_JSON  {"maxSize": number, "maxExpand": number, "output": "mathml"|"html"|"htmlAndMathml",
//                  "errorChars": number}
//
// Protocol, one JSON object per line:
//   start-up       child -> parent  {"ready": true, "katex": "0.19.1", "node": "v20.x"}
//                                   or {"ready": false, "message": "..."} then exit 2
//   per formula    parent -> child  {"i": 7, "latex": "\\frac{1}{2}", "display": true}
//                  child -> parent  {"i": 7, "ok": true}
//                                 | {"i": 7, "ok": false, "reason": "parse_error"|"render_error",
//                                    "error": "KaTeX parse error: ..."}
// Results are written (synchronously) in request order as soon as each formula is done, so when
// the child hangs or dies the parent knows exactly which formula was in progress.
//
// The input is untrusted: throwOnError turns every syntax problem into a ParseError, trust:false
// keeps \href/\url/\includegraphics inert, maxExpand bounds macro expansion (\def bombs) and
// maxSize bounds user sizes. Anything else KaTeX throws (RangeError on absurd nesting) is a
// render_error. What KaTeX cannot bound (time on huge input, memory) the parent bounds with a
// timeout and Node's heap limit.
"use strict";

const fs = require("fs");
const path = require("path");
const readline = require("readline");

function writeLine(obj) {
    const data = Buffer.from(JSON.stringify(obj) + "\n", "utf8");
    let off = 0;
    while (off < data.length) {
        try {
            off += fs.writeSync(1, data, off, data.length - off);
        } catch (e) {
            if (e.code !== "EAGAIN") throw e;
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1); // pipe full: 1 ms
        }
    }
}

// Commands of LaTeX's kernel and amsmath that KaTeX does not define. They are valid in a paper's
// formulas, so each is checked as its nearest KaTeX equivalent (cross-references mean nothing
// in a standalone formula and swallow their one argument; an unbalanced argument is still a
// parse error). Package commands (\si, \mathbbm, \symbf, ...) are not shimmed: KaTeX
// rejects them and the report says which. A fresh object per formula: KaTeX writes \gdef
// definitions into the macros option, and one formula must never change how the next parses.
function latexShims() {
    const gobble = () => ({tokens: [], numArgs: 1});
    return {
        "\\label": gobble(), "\\ref": gobble(), "\\eqref": gobble(), "\\pageref": gobble(),
        "\\mbox": "\\text{#1}", "\\textsc": "\\text{#1}", "\\ensuremath": "{#1}",
        "\\hdots": "\\ldots", "\\slash": "/", "\\displaylimits": "\\limits", "\\hfill": "\\quad",
    };
}

// Only formulas that name a shim get the macros object: building it for every formula costs
// about a fifth of the throughput. Without the option KaTeX starts from a fresh {} per call.
const SHIM_RE = /\\(?:label|ref|eqref|pageref|mbox|textsc|ensuremath|hdots|slash|displaylimits|hfill)(?![A-Za-z])/;

function main() {
    const katexDir = process.argv[2];
    let options;
    let katex;
    try {
        options = JSON.parse(process.argv[3] || "{}");
        katex = require(path.resolve(katexDir));
        if (typeof katex.renderToString !== "function") throw new Error("no renderToString");
        // mhchem (\ce, \pu: chemical formulae and units) ships with KaTeX as an extension.
        require(path.join(path.resolve(katexDir), "dist", "contrib", "mhchem.js"));
    } catch (e) {
        writeLine({ready: false, message: `cannot load KaTeX from ${katexDir}: ${e.message}`});
        process.exit(2);
    }
    const errorChars = options.errorChars || 500;
    const base = {
        throwOnError: true,
        strict: "ignore",
        trust: false,
        maxSize: options.maxSize,
        maxExpand: options.maxExpand,
        output: options.output || "mathml",
    };
    writeLine({ready: true, katex: katex.version, node: process.version});

    const rl = readline.createInterface({input: process.stdin, crlfDelay: Infinity});
    rl.on("line", (line) => {
        if (!line) return;
        const req = JSON.parse(line);
        let result;
        try {
            const options = Object.assign({displayMode: !!req.display}, base);
            if (SHIM_RE.test(req.latex)) options.macros = latexShims();
            katex.renderToString(req.latex, options);
            result = {i: req.i, ok: true};
        } catch (e) {
            const isParse = e instanceof katex.ParseError;
            const message = isParse ? String(e.message) : `${e && e.name}: ${e && e.message}`;
            result = {
                i: req.i, ok: false, reason: isParse ? "parse_error" : "render_error",
                error: message.slice(0, errorChars),
            };
        }
        writeLine(result);
    });
    rl.on("close", () => process.exit(0));
}

main();
