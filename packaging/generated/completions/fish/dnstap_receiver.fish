complete -c dnstap_receiver -s l -d 'IP address to listen on for TCP senders [default: 0.0.0.0]' -r
complete -c dnstap_receiver -s p -d 'TCP port to listen on [default: 6000]' -r
complete -c dnstap_receiver -s u -d 'Listen on this unix socket instead of TCP (a stale socket file is replaced)' -r -F
complete -c dnstap_receiver -s c -d 'YAML config file (keys: see docs/receiver.md); flags override its values' -r -F
complete -c dnstap_receiver -s t -l check-config -d 'Check the configuration and exit: load and compile it (config file, flags, TLS files, lists), print what would run, exit 0 when it is valid and 1 with the error otherwise. FILE is the config file (the same as -c FILE). Nothing is bound or started' -r -F
complete -c dnstap_receiver -s r -d 'Offline: read a Frame Streams capture file, print its records and exit' -r -F
complete -c dnstap_receiver -s f -d 'Forward records to HOST:PORT over TCP, one JSON object per line, instead of stdout; several collectors comma-separated (HOST:PORT,HOST:PORT: failover by default, more keys under forward-to in the config file)' -r
complete -c dnstap_receiver -l io -d 'I/O back-end for the inputs [default: auto]' -r -f -a "auto\t'io_uring when the kernel allows it, else epoll'
uring\t'io_uring only: start-up fails if the kernel refuses it'
epoll\t'epoll only'"
complete -c dnstap_receiver -l format -d 'Output format [default: text]' -r -f -a "text\t''
json\t''
yaml\t''
json-full\t''
yaml-full\t''
dnscollector-json\t'DNS-collector\'s JSON record'
dnscollector-flat-json\t'DNS-collector\'s flat JSON record'
dr4-json\t'python dnstap_receiver 4.7\'s JSON line'
golang-text\t''
golang-yaml\t''
golang-json\t''"
complete -c dnstap_receiver -l text-format -d 'A line of DNS-collector text directives instead of --format, e.g. "timestamp-rfc3339ns identity operation rcode queryip qname qtype" (docs/formats.md lists them)' -r
complete -c dnstap_receiver -l text-format-delimiter -d 'Between the fields of --text-format [default: one space]' -r
complete -c dnstap_receiver -l queue-policy -d 'When output is slower than input: block the readers, or drop batches and count them [default: block]' -r -f -a "block\t'Readers stop reading; back-pressure reaches the senders\' sockets'
drop\t'The batch is dropped and counted'"
complete -c dnstap_receiver -l threads -d 'Input threads, each with its own event loop [default: number of CPUs]' -r
complete -c dnstap_receiver -l writers -d 'Writer threads that decode and format in parallel, output kept in order; one stdout, forward or kafka output only (config: `writers`) [default: 2 when stdout is the only output and there are 2+ CPUs, else 1]' -r
complete -c dnstap_receiver -l metrics -d 'Serve Prometheus metrics on http://ADDR:PORT/metrics (config: `metrics:`) [default: off]' -r
complete -c dnstap_receiver -l forward-policy -d 'When the collector is slower than input or away (-f / forward-to) [default: block]' -r -f -a "block\t'The producer waits: the writer thread stalls, the pipeline queue fills, the readers stop reading and the DNS servers see TCP back-pressure. Nothing is lost'
drop-newest\t'The chunk being pushed (the newest records) is dropped and counted'
drop-oldest\t'The oldest queued chunks are dropped and counted to make room. Chunks queued again for a resend are kept (they may have reached the peer already, so they are neither lost nor droppable); when only those are left, the new chunk is dropped'
spill\t'Full memory goes to a bounded on-disk queue, replayed in order'"
complete -c dnstap_receiver -l generate-assets -d 'Write the man page and shell completions generated from these flags under DIR and exit (packaging; docs/operations.md)' -r -F
complete -c dnstap_receiver -s v -d 'Verbose: start-up details and a statistics line every 10 s on stderr'
complete -c dnstap_receiver -l reuse-port -d 'Set SO_REUSEPORT on TCP/TLS inputs, so that several receiver processes can listen on one port and the kernel spreads the connections among them (config: `reuse-port`)'
complete -c dnstap_receiver -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dnstap_receiver -s V -l version -d 'Print version'
