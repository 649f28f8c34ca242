#!/bin/sh
# Renders server.properties from the environment, formats the storage once (with the SCRAM
# users of the EXTERNAL listener), then runs the broker in the foreground.
#   KAFKA_EXTERNAL_ADVERTISED  host:port that edge bridges reach (the published port)
#   KAFKA_SCRAM_USERS_FILE     lines "name password" (a compose secret)
set -euf  # -f: the classpath wildcard libs/* is for java, not the shell
data=/var/lib/kafka/data
props=/var/lib/kafka/server.properties
external=${KAFKA_EXTERNAL_ADVERTISED:?set KAFKA_EXTERNAL_ADVERTISED (host:port)}
cat > "$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
listeners=INTERNAL://:9092,EXTERNAL://:9094,CONTROLLER://localhost:9093
advertised.listeners=INTERNAL://${KAFKA_INTERNAL_HOST:-kafka}:9092,EXTERNAL://${external}
listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.external.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.external.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs=${data}
auto.create.topics.enable=true
num.partitions=${KAFKA_NUM_PARTITIONS:-3}
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
PROPS
java="java -Xms128m -Xmx${KAFKA_HEAP:-512m} -XX:+UseG1GC -Djava.awt.headless=true"
java="$java -Dlog4j2.configurationFile=/opt/kafka/log4j2.xml -cp /opt/kafka/libs/*"
if [ ! -f "$data/meta.properties" ]; then
  set --
  while read -r name password; do
    [ -n "$name" ] && set -- "$@" --add-scram "SCRAM-SHA-512=[name=$name,password=$password]"
  done < "${KAFKA_SCRAM_USERS_FILE:?set KAFKA_SCRAM_USERS_FILE}"
  id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  # "=" form: a random id may start with "-", which the tool's parser takes for an option.
  $java kafka.tools.StorageTool format "--cluster-id=$id" -c "$props" "$@"
fi
exec $java kafka.Kafka "$props"
