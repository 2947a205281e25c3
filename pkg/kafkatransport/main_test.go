package kafkatransport_test

import (
	"os"
	"testing"

	"github.com/tributary-rag/tributary/pkg/kafkatest"
)

var cluster *kafkatest.Cluster

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m, &cluster)) }
