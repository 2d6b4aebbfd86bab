complete -c loadgen -s r -l read -d 'More files to replay (same as positional FILEs; fstrm_replay\'s spelling)' -r -F
complete -c loadgen -s u -l unix -d 'Connect to this unix socket' -r -F
complete -c loadgen -s a -l address -d 'Connect over TCP to this host (with -p)' -r
complete -c loadgen -s p -l port -d 'TCP port (with -a)' -r
complete -c loadgen -l tcp -d 'Connect over TCP to HOST:PORT' -r
complete -c loadgen -s n -l connections -d 'Parallel connections, each on its own thread' -r
complete -c loadgen -l count -d 'Total messages to send over all connections (the corpus is looped)' -r
complete -c loadgen -l duration -d 'Stop every connection after this many seconds' -r
complete -c loadgen -l reply-timeout -d 'Longest wait for ACCEPT and FINISH, in seconds' -r
complete -c loadgen -l tls-ca -d 'PEM CA bundle that signed the receiver\'s certificate' -r -F
complete -c loadgen -l tls-cert -d 'PEM client certificate chain (mutual TLS; with --tls-key)' -r -F
complete -c loadgen -l tls-key -d 'PEM private key of --tls-cert' -r -F
complete -c loadgen -l tls-server-name -d 'Name the receiver\'s certificate must carry [default: the target\'s host]' -r
complete -c loadgen -l tls-version -d 'Only this TLS version: 1.2 or 1.3 [default: either, 1.3 preferred]' -r
complete -c loadgen -l verify -d 'After the run, check the receiver\'s Prometheus counters at this URL (http://[user:pass@]host:port/metrics): every message sent was received, and every received one written, filtered or counted as lost. Exit 1 on a mismatch' -r
complete -c loadgen -l verify-wait -d 'Longest wait, in seconds, for the receiver\'s counters to settle (with --verify)' -r
complete -c loadgen -l seed -d 'Seed of the synthetic traffic: the same seed gives the same bytes' -r
complete -c loadgen -l synth-messages -d 'Distinct synthetic messages generated (the corpus that is then looped)' -r
complete -c loadgen -l synth-names -d 'Distinct query names in the synthetic traffic (Zipf-distributed)' -r
complete -c loadgen -l synth-identities -d 'Distinct dnstap identities (servers) in the synthetic traffic' -r
complete -c loadgen -l write-fstrm -d 'Write the corpus to this Frame Streams file (what fstrm_capture writes) and exit, without connecting anywhere' -r -F
complete -c loadgen -l rate -d 'Total messages per second over all connections, paced smoothly (about one write per millisecond); default: as fast as the receiver takes them' -r
complete -c loadgen -l verify-output -d 'After the run, count the lines of the receiver\'s output FILE (one per message in its text and JSON formats) until they stop growing, and report any shortfall' -r -F
complete -c loadgen -l verify-timeout -d 'Longest wait for the receiver\'s output to catch up (with --verify-output)' -r
complete -c loadgen -l generate-assets -d 'Write the man page and shell completions under DIR and exit (packaging)' -r -F
complete -c loadgen -l unidirectional -d 'Unidirectional Frame Streams: START, data, STOP; no READY/ACCEPT, no FINISH'
complete -c loadgen -l json -d 'Print the final report as one JSON object'
complete -c loadgen -l tls -d 'TLS over the TCP target (needs --tls-ca)'
complete -c loadgen -l synth -d 'Send synthetic traffic (seedable; see --seed, --synth-*) instead of replaying files'
complete -c loadgen -l discard -d 'Serve the target address in this process with a receiver that discards every frame (measures the sender alone, and counts what arrived)'
complete -c loadgen -s q -l quiet -d 'No progress line on stderr'
complete -c loadgen -s h -l help -d 'Print help (see more with \'--help\')'
complete -c loadgen -s V -l version -d 'Print version'
