// Subcommands of the `glide` command line. Each takes the arguments after its own name
// (argv[0] is "glide CMD") and returns the process exit code; errors are thrown as glide::Error
// and printed by main as one line.
#pragma once

namespace glide::cli {

int cmd_data(int argc, char** argv);   // glide data synth|convert|stats|text2xc
int cmd_bench(int argc, char** argv);  // glide bench data|train|hidden|serve|quant|cache|hash
int cmd_train(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_predict(int argc, char** argv);
int cmd_report(int argc, char** argv);  // glide report RUN.jsonl... [--peers peers.json] -o OUT
int cmd_serve(int argc, char** argv);
int cmd_index(int argc, char** argv);     // glide index --model M --train DATA -o M
int cmd_quantize(int argc, char** argv);  // glide quantize --model M -o M.int8.glide [--to bf16]

// Benchmarks, dispatched by cmd_bench.
int bench_data(int argc, char** argv);
int bench_hash(int argc, char** argv);
int bench_train(int argc, char** argv);
int bench_hidden(int argc, char** argv);
int bench_serve(int argc, char** argv);
int bench_infer(int argc, char** argv);
int bench_quant(int argc, char** argv);
int bench_cache(int argc, char** argv);

}  // namespace glide::cli
